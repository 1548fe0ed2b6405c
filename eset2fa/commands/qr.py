"""`eset2fa qr NAME`: the enrollment QR code again, while the user is pending."""

from pathlib import Path

import typer

from eset2fa.commands.invocation import invocation
from eset2fa.commands.options import user_name_argument


def print_qr(inv, uri: str, *, to_stderr: bool = False) -> None:
    """The QR code in half-blocks, black on white (dark-on-light for phone cameras).

    On stdout, or stderr when stdout must carry only a JSON document.
    """
    from rich.text import Text

    from eset2fa.twofactor.qr_codes import terminal_lines

    console = inv.output.err if to_stderr else inv.output.out
    for line in terminal_lines(uri):
        console.print(Text(line, style="black on bright_white"), soft_wrap=True)


def qr(
    ctx: typer.Context,
    name: str = user_name_argument(),
    png: Path = typer.Option(None, "--png", metavar="FILE", help="Write a PNG image (mode 0600)."),
    svg: Path = typer.Option(None, "--svg", metavar="FILE", help="Write an SVG image (mode 0600)."),
) -> None:
    """Show the enrollment QR code again while the user is pending (refused once active).

    The code holds the user's TOTP secret: show it only to that user. An enrolled user needs a
    token reset for a new code. --json prints the otpauth URI instead of the picture.

    Example:
        eset2fa qr alice
        eset2fa qr alice --svg alice.svg
    """
    from eset2fa.errors import UsageError
    from eset2fa.twofactor import enrollment

    inv = invocation(ctx)
    if png is not None and svg is not None:
        raise UsageError("Give --png or --svg, not both.")
    result = enrollment.enrollment_uri(inv.store, inv.actor, name)
    if png is not None or svg is not None:
        from eset2fa.twofactor.qr_codes import save

        kind, target = ("png", png) if png is not None else ("svg", svg)
        written = save(result["uri"], target, kind)
        result = {"name": result["name"], "file": str(written), "format": kind}
        inv.output.result(
            result, lambda: inv.output.message(f"Wrote {name}'s enrollment QR code to {written}")
        )
        return

    def human() -> None:
        print_qr(inv, result["uri"])
        inv.output.notice(f"Scan with an authenticator app to enroll {result['name']}.")

    inv.output.result(result, human)
