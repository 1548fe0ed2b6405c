#compdef eset2fa

_eset2fa_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _ESET2FA_COMPLETE=complete_zsh eset2fa)
}

compdef _eset2fa_completion eset2fa
# Autoloaded from $fpath (as _eset2fa, by compinit reading the #compdef line) this file runs at the
# first TAB: complete that TAB too, not only register the function for the next ones.
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  _eset2fa_completion "$@"
fi
