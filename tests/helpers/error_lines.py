"""The one-line error contract of the CLI (exit 2, no traceback, the last stderr line starts with "error:"),
checked the same way by every test module that provokes a failure on purpose."""


def one_error_line(result, *fragments) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error:"), result.stderr
    for f in fragments:
        assert f in line, (f, line)
    return line
