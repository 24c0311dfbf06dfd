# Completion in a real interactive zsh (zsh -f -i on a pseudo-terminal, through zsh/zpty):
#   zsh -f tests/harness/zsh_complete.zsh SCRIPT 'vault audit s' 'vault lo' ...
# sources SCRIPT after compinit, types each line and TAB, and prints, after "=== LINE", the
# screen text that followed (the listing, or the line as completed), escapes removed.
zmodload zsh/zpty
script=$1; shift
zpty z zsh -f -i
zpty -w z "PS1='%% '; PROMPT_EOL_MARK=''; unsetopt beep; autoload -Uz compinit; compinit -u -D; source ${(q)script}; zstyle ':completion:*' menu no; LISTMAX=1000; echo READ''Y"
zpty -r -m z line '*READY*'
# zle reads type-ahead once its first prompt is up: wait for a command typed at it to finish,
# and for the prompt after it (zle's, the terminal in its mode again): a line typed before it
# is echoed by the terminal and read by zle as type-ahead, which skips a slow listing.
zpty -w z "echo WARM''ED"
zpty -r -m z line '*WARMED*%*'
for words in "$@"; do
  zpty -w -n z "$words"$'\t'

  zpty -w -n z $'\x15'
  zpty -w z "echo END''MARK"
  zpty -r -m z out '*ENDMARK*%*'
  print -r -- "=== $words"
  print -r -- "$out" | sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\r//g' | grep -v ENDMARK
done
zpty -d z
