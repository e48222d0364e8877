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
