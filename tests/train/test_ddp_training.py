"""A two-process DDP run on CPU (gloo), launched by Lightning from a script in a subprocess."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from ponita.datasets import load_rmd17
    from ponita.train import MD17Task, fit, load_config

    frames = load_rmd17("ethanol", "train")[:12]
    config = load_config("md17", "quick", overrides=[
        "hidden_dim=8", "num_layers=1", "num_ori=4", "basis_dim=8", "batch_size=2", "max_epochs=2",
        "max_time_minutes=null", "accelerator=cpu", "devices=2", "strategy=ddp", "num_threads=1",
        f"output={sys.argv[1]}",
    ])
    result = fit(MD17Task(config), frames[:8], frames[8:10], frames[10:12])
    if result.model is not None:
        print("RANK0", result.test_metrics["forces_mae_meV_per_A"], flush=True)
    """
)


def test_two_process_ddp_training_on_cpu(tmp_path) -> None:
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    completed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run")], capture_output=True, text=True, timeout=180
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("RANK0") == 1
    assert (tmp_path / "run" / "potential.pt").is_file()
