"""`dltk verify`: prove a running Triton serves a model correctly, then measure it.

Checks, in order: server live, server ready and model ready (bounded waits), model
metadata/config, one HTTP and one gRPC inference on the samples (one array per input) or on
inputs generated from the ONNX signature, outputs against onnxruntime in-process on the
reference ONNX file within the tolerance of the model's precision, accuracy against the
samples' labels, a request with a wrong input shape (rejected with a clear error while the
server stays ready and keeps answering), and with --perf a bounded perf_analyzer run. TensorRT
engines `<model>_trt_<precision>` are compared with `<model>`'s ONNX file; BLS pipelines get
uint8 images and their classes and probabilities are checked (verify/models.py says how).
Prints a table of checks, writes a JSON report with --report, exits 1 when any check fails.
"""

from __future__ import annotations

from dltk.api_key import read_api_key
from dltk.verify.correctness import (
    bad_input_check,
    inference_checks,
    pipeline_checks,
    quick_check_note,
    reference_checks,
)
from dltk.verify.inputs import locate_references, samples_check
from dltk.verify.measure import measure_checks, perf_sweep_check
from dltk.verify.readiness import model_checks, server_checks
from dltk.verify.records import overall_exit_code
from dltk.verify.report import checks_table, failure_line, perf_table, write_report
from dltk.verify.state import VerifierState, console
from dltk.verify.triton_client import Triton


class Verifier(VerifierState):
    """One `dltk verify` run: the checks in order (each in its module), then the table, the
    report and the exit code."""

    def run(self) -> int:
        opts = self.opts
        triton = Triton(opts.url, opts.grpc_url, opts.timeout, read_api_key(opts.api_key_file))
        try:
            server_checks(self, triton)
            info = model_checks(self, triton)
            locate_references(self)
            inputs = samples_check(self, info)
            outputs = inference_checks(self, triton, inputs)
            if opts.quick:
                quick_check_note(self)
            elif self.served.kind == "pipeline":
                pipeline_checks(self, triton, inputs, outputs)
            else:
                reference_checks(self, inputs, outputs)
            bad_input_check(self, triton, inputs)
            if opts.perf:
                perf_sweep_check(self, inputs)
            measure_checks(self)
        finally:
            triton.close()
        console.print(checks_table(self.checks))
        if self.perf is not None:
            console.print(
                perf_table(
                    self.perf.rows,
                    f"perf_analyzer {opts.model} "
                    f"({self.perf.config.protocol}, batch "
                    f"{self.perf.config.batch_size})",
                )
            )
        if opts.report:
            for path in write_report(opts.report, self.report(), self.perf_csv()):
                console.print(f"report: {path}", soft_wrap=True)
        code = overall_exit_code(self.checks)
        # The last line is what the play shows when it fails: keep it one unwrapped line.
        console.print(
            "[green]all checks passed[/]" if code == 0 else failure_line(self.checks),
            soft_wrap=True,
        )
        return code
