from eset2fa.cli import app

app(prog_name="eset2fa")
