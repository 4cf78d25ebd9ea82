"""Build framed probe output (as the scanner's in-container script prints it) from step outputs."""

from __future__ import annotations


def frame(nonce: str, steps: dict[str, tuple[str, str, int]], *, ended: bool = True) -> str:
    """``steps``: name -> (stdout, stderr, exit code), in order."""
    out = []
    for name, (stdout, stderr, rc) in steps.items():
        out.append(f"\n{nonce} {name} stdout\n{stdout}")
        out.append(f"\n{nonce} {name} stderr\n{stderr}")
        out.append(f"\n{nonce} {name} rc\n{rc}\n")
    if ended:
        out.append(f"\n{nonce} end\n")
    return "".join(out)
