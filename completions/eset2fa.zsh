#compdef eset2fa

_eset2fa_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _ESET2FA_COMPLETE=complete_zsh eset2fa)
}

compdef _eset2fa_completion eset2fa
