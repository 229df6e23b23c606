# bash completion for luamigrate(1): commands, each command's options, and revision targets
# (head, heads, base, the project's revision ids and branch labels, read with `luamigrate
# history`).
# Installed as share/bash-completion/completions/luamigrate.

# Prints the project's revision ids, one a line; prints nothing when there is no project.
# The global -c/--config given on the line being completed applies.
_luamigrate_revisions() {
  local -a global=("$@")
  # "<base> -> ID, msg", "A -> ID (head), msg", "(A, B) -> ID (mergepoint), msg": the word
  # after the first arrow
  command luamigrate "${global[@]}" -q history 2>/dev/null |
    awk '{ for (i = 1; i < NF; i++) if ($i == "->") { sub(/[^0-9A-Za-z_].*/, "", $(i + 1)); print $(i + 1); next } }'
}

# Prints the project's branch labels, one a line (from history --json's branch_labels).
_luamigrate_labels() {
  command luamigrate "$@" -q history --json 2>/dev/null |
    grep -o '"branch_labels": \[[^]]*\]' | grep -o '"[^"]*"' | grep -v '^"branch_labels"$' |
    tr -d '"' | sort -u
}

# The targets a command takes on one branch: LABEL@head for upgrade, LABEL@base for
# downgrade, none for repair (it takes revisions), else the label itself and LABEL@head.
_luamigrate_label_targets() {
  local command=$1 l
  shift
  for l in $(_luamigrate_labels "$@"); do
    case "$command" in
      upgrade) echo "$l@head" ;;
      downgrade) echo "$l@base" ;;
      repair) ;;
      *) echo "$l $l@head" ;;
    esac
  done
}

_luamigrate() {
  local cur prev i word command=""
  local -a global=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=""
  [ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}

  local commands="init revision upgrade downgrade current heads branches history show merge stamp status repair check convert inspect lint help"
  local global_opts="-c --config --url -x --x-arg --lock-timeout --lock -q --quiet -v --verbose --color -t --targets --parallel --canary --keep-going --json --version -h --help"

  # Find the command: the first word after the global options and their values.
  i=1
  while [ "$i" -lt "$COMP_CWORD" ]; do
    word=${COMP_WORDS[i]}
    case "$word" in
      -c | --config)
        global+=(-c "${COMP_WORDS[i + 1]}")
        i=$((i + 2))
        continue
        ;;
      --url | -x | --x-arg | --lock-timeout | --lock | --color | -t | --targets | --parallel | --canary)
        i=$((i + 2))
        continue
        ;;
      --config=*) global+=(-c "${word#--config=}") ;;
      -*) ;;
      *)
        command=$word
        break
        ;;
    esac
    i=$((i + 1))
  done

  if [ -z "$command" ]; then
    case "$prev" in
      -c | --config)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
      --lock)
        COMPREPLY=($(compgen -W "session xact table" -- "$cur"))
        return
        ;;
      --color)
        COMPREPLY=($(compgen -W "auto always never" -- "$cur"))
        return
        ;;
      --url | -x | --x-arg | --lock-timeout | -t | --targets | --parallel | --canary)
        COMPREPLY=()
        return
        ;;
    esac
    if [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi

  local opts="" targets=""
  case "$command" in
    init) opts="" ;;
    revision) opts="-m --message --rev-id --head --splice --branch-label --depends-on --autogenerate" ;;
    upgrade) opts="--sql --dry-run --resume" targets="head heads" ;;
    downgrade) opts="--sql --dry-run" targets="base" ;;
    current) opts="-v --verbose -c --check-heads --json" ;;
    heads) opts="-v --verbose --resolve-dependencies --json" ;;
    branches) opts="-v --verbose" ;;
    history) opts="-r --rev-range -v --verbose -i --indicate-current --json" ;;
    show) opts="--json" targets="head heads base" ;;
    merge) opts="-m --message --rev-id --branch-label --splice" targets="heads" ;;
    stamp) opts="--purge --sql" targets="head heads base" ;;
    status) opts="--json" ;;
    repair) opts="" targets=" " ;;
    check) opts="" ;;
    convert) opts="-o --output" ;;
    inspect) opts="-o --output --baseline -m --message" ;;
    lint) opts="--offline --json --downgrade" targets="head heads base" ;;
    help)
      COMPREPLY=($(compgen -W "${commands% help}" -- "$cur"))
      return
      ;;
    *) return ;;
  esac
  opts="$opts -h --help"

  # bash splits "-r A:B" at the colon (COMP_WORDBREAKS): complete B after a lone ":"
  if [ "$command" = history ] && [ "$prev" = ":" ]; then
    COMPREPLY=($(compgen -W "base head heads current $(_luamigrate_revisions "${global[@]}")" -- "$cur"))
    return
  fi

  case "$prev" in
    -m | --message | --rev-id | --branch-label)
      COMPREPLY=()
      return
      ;;
    --head | --depends-on)
      if [ "$command" = revision ]; then
        COMPREPLY=($(compgen -W "head heads $(_luamigrate_revisions "${global[@]}")" -- "$cur"))
        return
      fi
      ;;
    -r | --rev-range)
      if [ "$command" = history ]; then
        # START:END: complete the side after the colon when there is one
        local ids start=""
        ids="base head heads current $(_luamigrate_revisions "${global[@]}")"
        if [[ "$cur" == *:* ]]; then
          start=${cur%%:*}:
        fi
        COMPREPLY=($(compgen -P "$start" -W "$ids" -- "${cur#"$start"}"))
        return
      fi
      ;;
  esac

  # convert alembic PATH [-o DIR]: the source word, then files; -o takes a directory
  if [ "$command" = convert ] && [[ "$cur" != -* ]]; then
    if [ "$prev" = -o ] || [ "$prev" = --output ]; then
      COMPREPLY=($(compgen -d -- "$cur"))
    elif [ "$prev" = convert ]; then
      COMPREPLY=($(compgen -W "alembic" -- "$cur"))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return
  fi
  if [ "$command" = init ] && [[ "$cur" != -* ]]; then
    COMPREPLY=($(compgen -d -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  if [ -n "$targets" ]; then
    COMPREPLY=($(compgen -W "$targets $(_luamigrate_label_targets "$command" "${global[@]}") $(_luamigrate_revisions "${global[@]}")" -- "$cur"))
  fi
}

complete -F _luamigrate luamigrate
