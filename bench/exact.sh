# bench/exact.sh — the --exact case of bench/run.sh (sourced, needs bench/lib.sh).
#
# Wall-clock figures on a shared 2-core machine move by 10–20 % between runs; instruction
# and system-call counts do not. For each pooler, mode (-S simple, -S -M prepared) and tool
# we start a fresh pooler under
#   callgrind  (valgrind --tool=callgrind): user-space instructions (Ir), all threads,
#   strace -c -f: system calls, all threads,
# run pgbench -c 10 -t N through it, stop it and read the total; once with N = EXACT_T1 and
# once with EXACT_T2. Per transaction = (total2 - total1) / (xacts2 - xacts1): pooler
# start-up, backend logins, client logins and shutdown are the same in both runs and cancel.
# Writes exact.csv, and for strace the per-syscall breakdown (exact-syscalls.txt).
#
# The per-transaction figure still moves between runs (by 100-250 instructions here):
# how many readiness events one epoll_wait returns, and so how often the loop turns,
# depends on timing, and a backend connect that times out under load adds a one-off
# cost to one run only. So each pair is measured EXACT_ROUNDS times and the report
# gives the median and the range.
#
# warmpool-w2 (--workers 2) is measured only when --targets names it (TARGETS_GIVEN=1): it
# doubles the case's time. Its figures then count the instructions and system calls of
# all its threads (the event loop and the I/O threads, hand-offs included); valgrind runs
# those threads one at a time, so the callgrind figure is the work done, not its overlap.

EXACT_CLIENTS=${EXACT_CLIENTS:-10}
EXACT_T1=${EXACT_T1:-2000}   # transactions per client, short run
EXACT_T2=${EXACT_T2:-4000}   # long run
EXACT_MODES=${EXACT_MODES:-simple prepared}
EXACT_ROUNDS=${EXACT_ROUNDS:-3}

exact_total() { # TOOL FILE — the run's total instructions or system calls
    case $1 in
    callgrind) awk '/^summary:/ { print $2; exit }' "$2" ;;
    strace) awk '$NF == "total" { print $4 }' "$2" ;;
    esac
}

# exact_run KIND MODE TOOL T ROUND — one pooler lifetime under TOOL; sets X_TOTAL X_XACTS
# X_STATUS
exact_run() {
    local kind=$1 mode=$2 tool=$3 t=$4 round=$5 dir port out
    dir=$WORK/exact-$kind-$mode-$tool-$t-r$round
    port=$(free_port)
    mkdir -p "$dir"
    case $tool in
    callgrind) out=$dir/callgrind.out
        set -- valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no ;;
    strace) out=$dir/strace.txt
        set -- strace -f -c -o "$out" ;;
    esac
    X_TOTAL='' X_XACTS=0 X_STATUS=fails
    if ! pooler_launch "$kind" "$dir" "$port" "$@" || ! wait_ready "$port" "${POOLER_PID:-0}" 120; then
        X_STATUS="does not start"
        note "exact: $kind under $tool did not serve: $(pooler_log_tail "$dir")"
        pooler_stop "$kind" "${POOLER_PID:-0}" "$LAUNCH_PID"
        return 0
    fi
    pgbench_measure "exact-$kind-$mode-$tool-t$t" "$port" "$POOLER_PID" "$EXACT_CLIENTS" \
        -S -M "$mode" -t "$t"
    pooler_stop "$kind" "$POOLER_PID" "$LAUNCH_PID"
    X_XACTS=$M_XACTS X_STATUS=$M_STATUS
    [ -s "$out" ] && X_TOTAL=$(exact_total "$tool" "$out")
    [ -n "$X_TOTAL" ] || X_STATUS="no $tool report"
    cp "$out" "$RESULTS/runs/exact-$kind-$mode-t$t-r$round.$tool" 2>/dev/null || true
}

exact_syscall_diff() { # SHORT LONG DXACTS — calls per transaction by syscall, busiest first
    awk -v dx="$3" '
        FNR == 1 { file++ }
        $NF == "total" || $NF == "syscall" || /^-/ || NF < 5 { next }
        { calls[$NF] += (file == 1 ? -$4 : $4) }
        END { for (s in calls) if (calls[s] / dx >= 0.005 || calls[s] / dx <= -0.005)
                  printf "%s %.2f\n", s, calls[s] / dx }' "$1" "$2" |
        sort -k2,2 -rn | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 } END { print "" }'
}

EXACT_BROKEN=

# exact_pair KIND MODE TOOL ROUND — the short and the long run; one row of exact.csv
exact_pair() {
    local kind=$1 mode=$2 tool=$3 round=$4 tot1 n1 st1 per status metric
    exact_run "$kind" "$mode" "$tool" "$EXACT_T1" "$round"
    tot1=$X_TOTAL n1=$X_XACTS st1=$X_STATUS
    [ "$st1" = "does not start" ] && EXACT_BROKEN="$EXACT_BROKEN $kind"
    if [ "$st1" = ok ]; then
        exact_run "$kind" "$mode" "$tool" "$EXACT_T2" "$round"
        status=$X_STATUS
    else
        X_TOTAL='' X_XACTS=0 status=$st1
    fi
    per=
    if [ "$status" = ok ] && [ "$X_XACTS" -gt "$n1" ]; then
        per=$(awk -v a="$tot1" -v b="$X_TOTAL" -v n=$((X_XACTS - n1)) \
            'BEGIN { printf "%.2f", (b - a) / n }')
    fi
    metric=$([ "$tool" = callgrind ] && echo instructions || echo syscalls)
    echo "$kind,$mode,$metric,$round,$EXACT_CLIENTS,$n1,$tot1,$X_XACTS,$X_TOTAL,$per,$status" >>"$EXACT_CSV"
    log "exact: $kind -M $mode $tool per transaction, round $round: ${per:-$status}"
    if [ "$tool" = strace ] && [ -n "$per" ]; then
        echo "$kind -M $mode (round $round): $(exact_syscall_diff \
            "$RESULTS/runs/exact-$kind-$mode-t$EXACT_T1-r$round.strace" \
            "$RESULTS/runs/exact-$kind-$mode-t$EXACT_T2-r$round.strace" $((X_XACTS - n1)))" \
            >>"$RESULTS/exact-syscalls.txt"
    fi
}

run_exact() {
    local kind mode tool round
    # Every backend login costs libpq a SCRAM key derivation (~30 M instructions): a
    # pool that grows to a different size in the two runs would not cancel out. With
    # min_pool_size = the pool size, each run opens exactly POOL_SIZE backends.
    local MIN_POOL=$POOL_SIZE # seen by the config writers run_exact calls
    # Under callgrind the pooler runs ~50x slower, and its ten backend logins (each a
    # SCRAM key derivation in libpq) queue behind each other: with the usual 15 s some
    # time out and are retried in one run only, which added up to 30 000 instructions
    # per transaction to that run's figure.
    local CONNECT_TIMEOUT=300
    command -v valgrind >/dev/null || die "--exact needs valgrind"
    command -v strace >/dev/null || die "--exact needs strace"
    echo "target,mode,metric,round,clients,xacts_short,total_short,xacts_long,total_long,per_xact,status" >"$EXACT_CSV"
    : >"$RESULTS/exact-syscalls.txt"
    for kind in $TARGETS; do
        [ "$kind" = direct ] && continue
        if [ "$kind" = warmpool-w2 ] && [ "${TARGETS_GIVEN:-0}" = 0 ]; then
            note "exact: warmpool-w2 not measured (name it in --targets to measure it too)"
            continue
        fi
        if [ ! -x "$(target_bin "$kind")" ]; then
            note "exact: $kind not measured: $(target_bin "$kind") is not built/installed"
            continue
        fi
        for mode in $EXACT_MODES; do
            for tool in callgrind strace; do
                for round in $(seq "$EXACT_ROUNDS"); do
                    # A pooler that cannot start under one tool is not tried again.
                    case " $EXACT_BROKEN " in *" $kind "*) continue ;; esac
                    log "exact: $kind -M $mode under $tool, -t $EXACT_T1 then -t $EXACT_T2 per client (round $round of $EXACT_ROUNDS)"
                    exact_pair "$kind" "$mode" "$tool" "$round"
                done
            done
        done
    done
}

exact_md() {
    echo "## Exact figures per transaction ($EXACT_CLIENTS clients, -S; difference of -t $EXACT_T1 and -t $EXACT_T2 per client; median of $EXACT_ROUNDS rounds, range in brackets)"
    echo
    echo "| pooler | mode | user-space instructions / xact (callgrind) | system calls / xact (strace -c -f) |"
    echo "|---|---|---|---|"
    awk -F, 'NR > 1 {
            k = $1 " | " $2; m = $3
            if (!(k in seen)) { seen[k] = 1; order[++n] = k }
            if ($11 == "ok" && $10 != "") vals[k, m] = vals[k, m] " " $10
            else if (!((k, m) in fail)) fail[k, m] = $11
        }
        function cell(k, m,    a, c, i, j, t, med, fmt) {
            c = split(vals[k, m], a, " ")
            if (c == 0) return ((k, m) in fail) ? fail[k, m] : "-"
            for (i = 2; i <= c; i++) # insertion sort: a handful of values
                for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            med = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
            fmt = (m == "syscalls") ? "%.2f" : "%.0f"
            if (c == 1) return sprintf(fmt, med)
            return sprintf(fmt " [" fmt "-" fmt "]", med, a[1], a[c])
        }
        END { for (i = 1; i <= n; i++)
                  printf "| %s | %s | %s |\n", order[i], cell(order[i], "instructions"), cell(order[i], "syscalls") }' "$EXACT_CSV"
    echo
    if [ -s "$RESULTS/exact-syscalls.txt" ]; then
        echo "System calls per transaction by name:"
        echo
        sed 's/^/- /' "$RESULTS/exact-syscalls.txt"
        echo
    fi
}
