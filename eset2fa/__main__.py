from .cli import app

app(prog_name="eset2fa")
