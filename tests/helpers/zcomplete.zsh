# Drives zsh's completion as a user at a terminal would: starts an interactive zsh on a
# pseudo-terminal with the completion directory first in fpath, types LINE and two TABs, and
# prints what the terminal showed (the candidate list included), up to an end marker the
# shell prints once the completion is done.
#   zsh zcomplete.zsh COMPLETIONS_DIR BIN_DIR CWD LINE
zmodload zsh/zpty
zpty z "TERM=dumb zsh -f -i"
zpty -w z "PROMPT='>'; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D; path=(${(q)2} \$path); cd ${(q)3}; setopt autolist nolistambiguous nobeep; print -r -- SET""UP""DONE"
# type only once zle shows the prompt, or the keys may be taken before it is reading them
zpty -r z out '*SETUPDONE*>*'
zpty -w -n z "$4"$'\t\t'
# ^U clears the line; the marker is spelled so that its echo does not match
zpty -w z $'\C-u''print -r -- END""OF""COMPLETION'
zpty -r z out '*ENDOFCOMPLETION*'
zpty -d z
print -r -- "${out//$'\r'/}"
