#!/usr/bin/python
# Copyright: DLTK Deploy contributors
# Apache-2.0
"""Ansible module: the host's NVIDIA GPU facts (PCI bus and driver), one answer for every role.

The logic is plugins/module_utils/dltk_gpu_facts.py, which is the dltk package's gpu_facts.py (a
symlink: one file, stdlib only, unit-tested in tests/unit/test_gpu_facts.py); `main` is the thin
Ansible shell around it. Read-only; runs in check mode too.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: nvidia_gpu_facts
short_description: NVIDIA GPUs and NVSwitches on the PCI bus, and the GPUs the driver reports
description:
  - Reads vendor, device and class of every PCI device under O(pci_devices_dir) (sysfs).
  - NVIDIA GPUs are vendor C(0x10de) display controllers (class C(0x03xx));
    NVSwitches are class C(0x0680).
  - Runs C(nvidia-smi --query-gpu=index,name,pci.bus_id,compute_cap --format=csv,noheader) when it
    is installed and reports whether the driver answers, and why not.
  - Returns the result as the fact C(nvidia_gpu_facts). Read-only; runs in check mode too.
options:
  pci_devices_dir:
    description: Where the PCI devices are listed (sysfs).
    type: path
    default: /sys/bus/pci/devices
  driver:
    description: Ask nvidia-smi for the GPUs the driver reports.
    type: bool
    default: true
  proc_gpus_dir:
    description: Where the loaded NVIDIA kernel module lists its GPUs (one directory per GPU).
    type: path
    default: /proc/driver/nvidia/gpus
author: DLTK Deploy
"""

EXAMPLES = r"""
- name: Read the GPU facts
  dltk.deploy.nvidia_gpu_facts:
    pci_devices_dir: /sys/bus/pci/devices
"""

RETURN = r"""
ansible_facts:
  description: C(nvidia_gpu_facts) with pci_gpus, nvswitches, nvidia_pci_devices, gpus and driver.
  returned: always
  type: dict
"""


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule
    from ansible_collections.dltk.deploy.plugins.module_utils.dltk_gpu_facts import gather

    module = AnsibleModule(
        argument_spec={
            "pci_devices_dir": {"type": "path", "default": "/sys/bus/pci/devices"},
            "driver": {"type": "bool", "default": True},
            "proc_gpus_dir": {"type": "path", "default": "/proc/driver/nvidia/gpus"},
        },
        supports_check_mode=True,
    )
    facts = gather(
        module.params["pci_devices_dir"],
        driver=module.params["driver"],
        proc_gpus_dir=module.params["proc_gpus_dir"],
    )
    module.exit_json(changed=False, ansible_facts={"nvidia_gpu_facts": facts})


if __name__ == "__main__":
    main()
