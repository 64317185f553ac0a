"""The one exception type that reaches the user as a clean message."""


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2 (`exit_code`; subclasses may name another)."""

    exit_code = 2


def first_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type's name), for one-line errors."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def parse_problem(e: BaseException) -> str:
    """One line for a parser's error: YAML's "problem at line L, column C" (its message draws the line with a caret
    over several lines), else the first line of the message."""
    problem, mark = getattr(e, "problem", None), getattr(e, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return first_line(e)


def torch_load_problem(path, e: BaseException) -> str:
    """One line for a `torch.load(path, weights_only=True)` that failed: what the file is and what to do.

    torch's own message for a refused pickle runs to several paragraphs and suggests weights_only=False, which
    would run the file's code; the refused global (e.g. `posix.system`) is the telling part."""
    text = str(e)
    if "Weights only load failed" in text or type(e).__name__ == "UnpicklingError":
        found = [line.strip() for line in text.splitlines() if "GLOBAL" in line or "global" in line.split(" ")[:3]]
        what = f" ({found[0].rstrip('.')})" if found else ""
        return (
            f"{path}: refused: it holds pickled Python objects, not only tensors{what}; loading it could run "
            "code, so cyclegan does not (it reads .pth files with torch.load(weights_only=True)). If you trust "
            "its source, load it yourself and re-save the tensors with torch.save(net.state_dict(), ...)"
        )
    return f"{path}: cannot read as a PyTorch state dict of tensors ({type(e).__name__}: {first_line(e)})"
