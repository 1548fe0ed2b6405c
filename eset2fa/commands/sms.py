"""`eset2fa sms test`: send one SMS through the configured transport to check it."""

import typer

from eset2fa.commands.invocation import invocation

app = typer.Typer(help="Check SMS delivery.", no_args_is_help=True)


@app.command("test")
def test(
    ctx: typer.Context,
    phone: str = typer.Argument(..., help="Recipient, international form (+420...)."),
    text: str = typer.Option(None, "--text", help="Message text (default: a test message)."),
    region: str = typer.Option(
        None, "--region", help="Country for a national number, e.g. CZ or US."
    ),
) -> None:
    """Send a test SMS through the configured transport (sms.transport) and report the result.

    Exit code 7 when the gateway refuses or cannot be reached; the message says why.

    Example:
        eset2fa sms test +420601123456
        eset2fa sms test 601123456 --region CZ --text "hello" --json
    """
    from eset2fa.ops.sms_test import send_test_sms

    inv = invocation(ctx)
    result = send_test_sms(inv.store, inv.actor, phone, text, region)
    reference = f" (reference {result['reference']})" if result["reference"] else ""
    inv.output.result(
        result,
        lambda: inv.output.message(
            f"SMS to {result['recipient']} handed to {result['transport']}{reference}"
        ),
    )
