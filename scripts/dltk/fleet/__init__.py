"""A fleet of Triton hosts behind the triton_lb load balancer: the sandbox fleet's inventory
(`python -m dltk.fleet inventory`), the load balancer's runtime API (drain a server) and a
traffic check that proves requests through the load balancer reach every host."""
