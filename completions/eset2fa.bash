_eset2fa_completion() {
    local IFS=$'
'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \
                   COMP_CWORD=$COMP_CWORD \
                   _ESET2FA_COMPLETE=complete_bash $1 ) )
    return 0
}

complete -o default -F _eset2fa_completion eset2fa
