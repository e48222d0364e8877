import subprocess
import sys

import clipica
from clipica.cli import main


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert clipica.__version__ in capsys.readouterr().out


def test_unknown_command_exits_2(capsys):
    try:
        main(["no-such-command"])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err
    assert "Traceback" not in err


def test_no_command_exits_2(capsys):
    assert main([]) == 2


def test_import_is_light():
    code = (
        "import sys, clipica; "
        "heavy = [m for m in ('torch', 'open_clip', 'transformers', 'matplotlib', 'sklearn', 'pandas') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_parser_is_light():
    """`clipica --help` (every subcommand's parser, the bench targets' too) imports none of the
    heavy libraries: a command pays only for what it runs."""
    code = (
        "import sys, clipica.cli; clipica.cli.build_parser(); "
        "heavy = [m for m in ('torch', 'open_clip', 'transformers', 'matplotlib', 'sklearn', 'scipy', 'pandas') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_run_takes_the_extraction_engine_and_preprocess_options(tmp_path):
    """`clipica run` forwards --engine/--workers/--preprocess to extraction: Ray options
    without --engine ray are refused there with one line, before any model is loaded."""
    import subprocess
    import sys

    help_text = subprocess.run([sys.executable, "-m", "clipica", "run", "--help"],
                               capture_output=True, text=True).stdout
    for flag in ("--engine", "--address", "--workers", "--gpus-per-worker", "--preprocess"):
        assert flag in help_text
    r = subprocess.run(
        [sys.executable, "-m", "clipica", "run", "--model", "ViT-B-32", "--pretrained", "none",
         "--data", "synthetic-faces:8", "--out", str(tmp_path / "run"), "--workers", "2", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 2, r.stderr
    assert "only apply to --engine ray" in r.stderr and "Traceback" not in r.stderr
