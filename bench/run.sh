#!/usr/bin/env bash
# bench/run.sh — warmpool's benchmark harness (issue 7); `make bench` runs it.
#
# Starts its own throwaway PostgreSQL 15 (pgbench scale 10, role bench/benchpw with a SCRAM
# secret), PgBouncer from Debian's package and ./warmpool with the same auth and pool size,
# then runs pgbench against direct PostgreSQL and the poolers in the same run, alternating
# targets inside every cell, and reports medians. Targets: direct, pgbouncer, warmpool
# (workers = 1, the default) and warmpool-w2 (the same binary and config, started with
# --workers 2), reported side by side as "workers 1 vs 2"; floor with --floor.
#
#   bench/run.sh                 full matrix: {-S, TPC-B} x {simple, extended, prepared}
#                                x {1, 50, 500 clients}, 3 rounds of 10 s (~40 min)
#   bench/run.sh --quick         -S, 50 clients, three modes, 1 round of 5 s (< 3 min)
#   bench/run.sh --storm         2 000 clients vs pool 20 for 30 s; RSS at 2 000 idle clients;
#                                failed transactions and connection errors per pooler
#   bench/run.sh --connect       pgbench -C (one connection per transaction), 20 clients
#   bench/run.sh --exact         callgrind instructions and strace system calls per
#                                transaction of each pooler (difference of two run lengths);
#                                warmpool-w2 only if --targets names it
#   bench/run.sh --all           matrix, connect, storm and exact
#   bench/run.sh --floor ...     also measure floor-relay (bench/floor/relay.c): a 1:1
#                                relay doing only one read and one write per event, the
#                                kernel's floor for any pooler's added latency and CPU
# --storm/--connect/--exact run only that case unless --matrix (or --quick) is also given.
# Knobs: --rounds N --duration S --clients "1 50" --modes "simple" --workloads "select-only
# tpcb" --targets "direct pgbouncer warmpool warmpool-w2" (the default) --pool N --keep
# (leave the temp dir).
# Environment: WARMPOOL (default ./warmpool), PGBOUNCER (default /usr/sbin/pgbouncer),
# FLOOR_RELAY (default build/floor-relay; `make bench` builds it), STORM_DURATION (s of
# load in --storm, default 30), STORM_CLIENTS (default 2000).
#
# Output: bench/results/<stamp>-<label>/ with raw.csv (every run), summary.csv and
# summary.md (medians and ratios), PNG plots, pgbench outputs (runs/); bench/results/latest
# points at the newest. A warmpool that is not built or does not serve is left out of
# the run with a note; everything else is still measured.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
. "$BENCH/lib.sh"
. "$BENCH/exact.sh"

# ---------------------------------------------------------------- settings

ROUNDS=3
DURATION=10
CLIENTS="1 50 500"
MODES="simple extended prepared"
WORKLOADS="select-only tpcb"
TARGETS="direct pgbouncer warmpool warmpool-w2"
TARGETS_GIVEN=0        # --targets given: --exact then also measures warmpool-w2
POOL_SIZE=20
SCALE=10
JOBS=2                 # pgbench threads: the machine has 2 cores
PG_MAX_CONN=600        # 500 direct clients + three pools of 20 + superuser slots
WARMUP=3               # seconds of -S per target before measuring
STORM_CLIENTS=${STORM_CLIENTS:-2000}
STORM_DURATION=${STORM_DURATION:-30}
STORM_IDLE=15          # seconds the idle clients stay connected while RSS is read
CONNECT_CLIENTS=20
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
WARMPOOL=${WARMPOOL:-$ROOT/warmpool}
FLOOR_RELAY=${FLOOR_RELAY:-$ROOT/build/floor-relay}
KEEP=0
LABEL=
DO_MATRIX=0 DO_STORM=0 DO_CONNECT=0 DO_EXACT=0 WITH_FLOOR=0

ARGS=$*
usage() { sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
    --quick) DO_MATRIX=1 ROUNDS=1 DURATION=5 CLIENTS=50 WORKLOADS=select-only WARMUP=2 LABEL=quick ;;
    --matrix) DO_MATRIX=1 ;;
    --storm) DO_STORM=1 ;;
    --connect) DO_CONNECT=1 ;;
    --exact) DO_EXACT=1 ;;
    --all) DO_MATRIX=1 DO_STORM=1 DO_CONNECT=1 DO_EXACT=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --modes) MODES=$2; shift ;;
    --workloads) WORKLOADS=$2; shift ;;
    --targets) TARGETS=$2 TARGETS_GIVEN=1; shift ;;
    --floor) WITH_FLOOR=1 ;;
    --pool) POOL_SIZE=$2; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 >&2 ;;
    esac
    shift
done
[ $((DO_STORM + DO_CONNECT + DO_EXACT)) -gt 0 ] || DO_MATRIX=1
case " $TARGETS " in *" floor "*) ;; *) [ "$WITH_FLOOR" = 0 ] || TARGETS="$TARGETS floor" ;; esac
if [ -z "$LABEL" ]; then
    LABEL=$([ "$DO_MATRIX" = 1 ] && echo matrix || true)
    [ "$DO_CONNECT" = 1 ] && LABEL=${LABEL:+$LABEL-}connect
    [ "$DO_STORM" = 1 ] && LABEL=${LABEL:+$LABEL-}storm
    [ "$DO_EXACT" = 1 ] && LABEL=${LABEL:+$LABEL-}exact
fi
# A pgbench run that outlives this is stuck (a pooler that never answers).
PGBENCH_TIMEOUT=$((DURATION > STORM_DURATION ? DURATION : STORM_DURATION))
PGBENCH_TIMEOUT=$((PGBENCH_TIMEOUT * 3 + 120))

# pgbench with hundreds of clients, and poolers with thousands, need descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=65536

# ---------------------------------------------------------------- lifecycle

STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$BENCH/results/$STAMP-$LABEL
mkdir -p "$RESULTS/runs"
ln -sfn "$STAMP-$LABEL" "$BENCH/results/latest"
WORK=$(mktemp -d /tmp/warmpool-bench.XXXXXX)
chmod 755 "$WORK"
NOTES=$RESULTS/notes.txt
: >"$NOTES"
BG_PIDS=
PG_DIR=

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in $BG_PIDS; do kill -TERM "$pid" 2>/dev/null || true; done
    pooler_stop_all
    pg_teardown || true
    for f in "$WORK"/*/pgbouncer.log "$WORK"/*/warmpool.log "$WORK"/*/stdout.log; do
        [ -s "$f" ] && cp "$f" "$RESULTS/$(basename "$(dirname "$f")")-$(basename "$f")"
    done 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note() { log "NOTE: $*"; echo "$*" >>"$NOTES"; }

declare -A T_PORT T_PID T_THREADS
ACTIVE=

# Starts every requested target; a target that cannot serve is left out with a note.
start_targets() {
    local t port
    for t in $TARGETS; do
        case $t in
        direct)
            T_PORT[direct]=$PG_PORT T_PID[direct]=-
            ACTIVE="$ACTIVE direct"
            ;;
        pgbouncer | warmpool | warmpool-w2 | floor)
            if start_pooler "$t" "$WORK/$t"; then ACTIVE="$ACTIVE $t"; fi
            ;;
        *) die "unknown target $t" ;;
        esac
    done
    [ -n "$ACTIVE" ] || die "no target serves"
    log "targets: $ACTIVE"
}

target_bin() { # KIND — the executable a pooler target runs
    case $1 in
    warmpool | warmpool-w2) echo "$WARMPOOL" ;;
    floor) echo "$FLOOR_RELAY" ;;
    *) echo "$PGBOUNCER" ;;
    esac
}

start_pooler() { # KIND DIR — sets T_PORT/T_PID[KIND] or notes why it cannot run
    local kind=$1 dir=$2 port bin
    port=$(free_port)
    bin=$(target_bin "$kind")
    if [ ! -x "$bin" ]; then
        note "$kind not measured: $bin is not built/installed"
        return 1
    fi
    if ! pooler_launch "$kind" "$dir" "$port" || ! wait_ready "$port" "${POOLER_PID:-0}" 20; then
        note "$kind not measured: it did not serve 'select 1' on 127.0.0.1:$port within 20 s: $(pooler_log_tail "$dir")"
        cp "$dir"/*.ini "$RESULTS/" 2>/dev/null || true
        pooler_stop "$kind" "${POOLER_PID:-0}" "$LAUNCH_PID"
        return 1
    fi
    T_PORT[$kind]=$port T_PID[$kind]=$POOLER_PID
    # Threads once it serves: shows that --workers 2 took (warmpool-w2 has more than warmpool).
    T_THREADS[$kind]=$(proc_status_kb "$POOLER_PID" Threads)
    log "$kind pid $POOLER_PID on 127.0.0.1:$port (nofile $(awk '/open files/ { print $4 }' /proc/$POOLER_PID/limits), ${T_THREADS[$kind]} threads)"
}

stop_target() { # KIND
    local entry
    for entry in $RUNNING_POOLERS; do
        case $entry in "$1:${T_PID[$1]}:"*) pooler_stop $(echo "$entry" | tr ':' ' ') ;; esac
    done
}

drop_target() { # KIND REASON — a target that broke mid-run is measured no further
    local t rest=
    for t in $ACTIVE; do [ "$t" = "$1" ] || rest="$rest $t"; done
    ACTIVE=$rest
    note "$1 dropped from the rest of the run: $2"
}

rotate() { # N WORDS... — the words rotated left by N-1, so each round starts elsewhere
    local n=$1
    shift
    n=$(((n - 1) % $#))
    echo "${@:n+1}" "${@:1:n}"
}

# pgbench starts the -T clock before its clients connect, and 500 SCRAM logins take 1–2 s
# here (2 000 take 6–7 s): give -T one extra second per 250 clients so that the measured
# window (pgbench reports tps "without initial connection time") stays close to SECONDS.
run_seconds() { # CLIENTS SECONDS
    echo $(($2 + ($1 + 249) / 250))
}

workload_args() {
    case $1 in
    select-only) echo -S ;;
    tpcb) echo "" ;;
    select-only-connect) echo "-S -C" ;;
    *) die "unknown workload $1" ;;
    esac
}

RAW=$RESULTS/raw.csv
echo "case,workload,mode,clients,target,round,status,tps,lat_avg_ms,p50_ms,p99_ms,xacts,failed,conn_ms,cpu_ms_per_1k,load1,note,cpu_user_ms_per_1k" >"$RAW"

# measure CASE WORKLOAD MODE CLIENTS ROUND TARGET [extra pgbench args]
measure() {
    local c=$1 w=$2 m=$3 n=$4 r=$5 t=$6 load1
    shift 6
    # Other people's work on this machine is the main noise: keep the load beside each run.
    load1=$(cut -d' ' -f1 /proc/loadavg)
    pgbench_measure "$c-$w-$m-c$n-r$r-$t" "${T_PORT[$t]}" "${T_PID[$t]}" "$n" \
        -M "$m" $(workload_args "$w") "$@"
    echo "$c,$w,$m,$n,$t,$r,$M_STATUS,$M_TPS,${M_AVG:-},$M_P50,$M_P99,$M_XACTS,$M_FAILED,${M_CONN:-},$M_CPU,$load1,$(echo "${M_NOTE:-}" | tr , ';'),$M_CPU_USER" >>"$RAW"
    log "$(printf '%-7s %-19s %-8s c=%-4s r%s %-9s tps=%-7.0f p99=%-8s cpu/1k=%-6s %s' \
        "$c" "$w" "$m" "$n" "$r" "$t" "$M_TPS" "$M_P99" "$M_CPU" "$M_STATUS")"
    [ "$M_STATUS" = ok ] || [ "$M_STATUS" = fails ] || drop_target "$t" "$M_STATUS: $M_NOTE"
    [ "$M_STATUS" = ok ] || note "$t $w -M $m $n clients round $r: $M_STATUS: ${M_NOTE:-see runs/}"
    sleep 1 # let backends and sockets of the previous run go away
}

warm_up() {
    local t
    for t in $ACTIVE; do
        pgbench_measure "warmup-$t" "${T_PORT[$t]}" "${T_PID[$t]}" 50 -S -T "$WARMUP"
    done
}

# ---------------------------------------------------------------- cases

# A target that failed a cell is not run again in that cell's later rounds: the cell is
# reported as failed anyway, and a failure can cost minutes (query_wait_timeout).
run_matrix() {
    local w m n r t failed
    for w in $WORKLOADS; do
        for m in $MODES; do
            for n in $CLIENTS; do
                [ "$w" = tpcb ] && pg_refresh_tpcb
                failed=
                for r in $(seq 1 "$ROUNDS"); do
                    for t in $(rotate "$r" $ACTIVE); do
                        case " $failed " in *" $t "*) continue ;; esac
                        measure matrix "$w" "$m" "$n" "$r" "$t" -T "$(run_seconds "$n" "$DURATION")"
                        [ "$M_STATUS" = ok ] || failed="$failed $t"
                    done
                done
            done
        done
    done
}

run_connect() {
    local r t
    for r in $(seq 1 "$ROUNDS"); do
        for t in $(rotate "$r" $ACTIVE); do
            measure connect select-only-connect simple "$CONNECT_CLIENTS" "$r" "$t" \
                -T "$(run_seconds "$CONNECT_CLIENTS" "$DURATION")"
        done
    done
}

# Storm: fresh pooler instances (so RSS reflects only this case), 2 000 clients first held
# idle (pgbench \sleep) to read RSS, then 30 s of -S with all of them over a pool of 20.
# Every pooler target is stormed in turn (warmpool and warmpool-w2 each get their own
# instance). Errors per target: failed transactions (pgbench's count) and connections
# that failed / clients aborted (pgbench_errors), both in the idle logins and under load.
STORM_CSV=$RESULTS/storm.csv
run_storm() {
    local t pid port bg i t0 rss0 rss_idle uss0 uss_idle pss_idle fds conn_s idle_conn idle_errs
    echo '\sleep '"$STORM_IDLE"' s' >"$WORK/idle.sql"
    echo "target,clients,pool_size,duration_s,status,tps,lat_avg_ms,p50_ms,p99_ms,failed,conn_ms,cpu_ms_per_1k,rss_start_kb,rss_idle_kb,fds_idle,rss_peak_kb,note,uss_start_kb,uss_idle_kb,pss_idle_kb,conn_errors,aborted_clients,idle_conn_errors,idle_aborted_clients,threads" >"$STORM_CSV"
    [ "$NOFILE" -gt $((STORM_CLIENTS + 200)) ] ||
        note "storm: ulimit -n is $NOFILE, too low for $STORM_CLIENTS clients"
    note "storm: direct PostgreSQL is not measured ($STORM_CLIENTS backends would need max_connections > $STORM_CLIENTS)"
    for t in $TARGETS; do
        # The floor relay would open one backend per client.
        [ "$t" = direct ] || [ "$t" = floor ] && continue
        start_pooler "$t" "$WORK/storm-$t" || continue
        pid=${T_PID[$t]} port=${T_PORT[$t]}
        rss0=$(proc_status_kb "$pid" VmRSS) uss0=$(uss_kb "$pid")
        log "storm $t: connecting $STORM_CLIENTS idle clients"
        pgbench -h 127.0.0.1 -p "$port" -U bench -n -c "$STORM_CLIENTS" -j "$JOBS" -t 1 \
            -f "$WORK/idle.sql" bench >"$RESULTS/runs/storm-idle-$t.txt" 2>&1 &
        bg=$!
        BG_PIDS="$BG_PIDS $bg"
        i=0 t0=$(date +%s)
        while alive "$bg" && [ "$(fd_count "$pid")" -lt "$STORM_CLIENTS" ] && [ "$i" -lt 1200 ]; do
            sleep 0.1; i=$((i + 1))
        done
        # Wall-clock seconds, not i / 10: on a busy machine one turn of this loop takes
        # several tenths of a second (i / 10 was 7 when the logins took 25 s).
        conn_s=$(($(date +%s) - t0 + 1))
        sleep 1
        rss_idle=$(proc_status_kb "$pid" VmRSS) fds=$(fd_count "$pid")
        uss_idle=$(uss_kb "$pid") pss_idle=$(pss_kb "$pid")
        alive "$bg" || note "storm $t: idle clients ended before RSS was read (see runs/storm-idle-$t.txt)"
        wait "$bg" || note "storm $t: idle pgbench failed: $(grep -m1 -E 'error|fatal' "$RESULTS/runs/storm-idle-$t.txt" || true)"
        idle_errs=$(pgbench_errors "$RESULTS/runs/storm-idle-$t.txt" | tr ' ' ,)
        # pgbench's own figure for the logins, if longer (it connects each thread's clients
        # one after the other, so the descriptors above lag only by the last few).
        idle_conn=$(sed -n 's/^initial connection time = \([0-9]*\).*/\1/p' "$RESULTS/runs/storm-idle-$t.txt")
        [ -n "$idle_conn" ] && [ $((idle_conn / 1000 + 1)) -gt "$conn_s" ] && conn_s=$((idle_conn / 1000 + 1))
        log "storm $t: RSS ${rss0} kB at start, ${rss_idle} kB with $fds descriptors open; loading"
        # The logins alone took conn_s seconds just now (much more when the machine is busy);
        # pgbench's -T clock includes them, so add twice that to keep ~30 s of load. When
        # the logins take longer than -T, pgbench ends with 0 transactions and exit 0.
        pgbench_measure "storm-$t" "$port" "$pid" "$STORM_CLIENTS" -S -M simple \
            -T $((STORM_DURATION + 2 * conn_s + 5))
        echo "$t,$STORM_CLIENTS,$POOL_SIZE,$STORM_DURATION,$M_STATUS,$M_TPS,${M_AVG:-},$M_P50,$M_P99,$M_FAILED,${M_CONN:-},$M_CPU,$rss0,$rss_idle,$fds,$(proc_status_kb "$pid" VmHWM),$(echo "${M_NOTE:-}" | tr , ';'),$uss0,$uss_idle,$pss_idle,$M_CONN_ERRORS,$M_ABORTED,$idle_errs,${T_THREADS[$t]}" >>"$STORM_CSV"
        [ "$M_STATUS" = ok ] || note "storm $t: $M_STATUS: ${M_NOTE:-see runs/storm-$t.txt} (-T $((STORM_DURATION + 2 * conn_s + 5)) s; the idle logins took ${conn_s} s)"
        log "storm $t: tps=${M_TPS%.*} p99=$M_P99 ms failed=$M_FAILED connection errors=$M_CONN_ERRORS aborted=$M_ABORTED (idle logins: connection errors,aborted=$idle_errs) $M_STATUS"
        stop_target "$t"
    done
}

# ---------------------------------------------------------------- report

machine_header() {
    echo "# warmpool bench — $STAMP ($LABEL)"
    echo
    echo "- machine: $(nproc) cores, $(uname -sr), load average at start: $LOAD0"
    echo "- PostgreSQL $PG_VERSION, scale $SCALE; $("$PGBOUNCER" --version 2>/dev/null | head -n 1);" \
        "warmpool $WP_VERSION"
    echo "- transaction pooling, pool size $POOL_SIZE, SCRAM auth, pgbench -j $JOBS over TCP 127.0.0.1"
    case " $TARGETS " in *" warmpool-w2 "*)
        echo "- warmpool-w2: the same warmpool binary and config, started with \`--workers 2\`" \
            "(threads once serving: warmpool ${T_THREADS[warmpool]:-—}, warmpool-w2 ${T_THREADS[warmpool-w2]:-—};" \
            "— = did not serve, see Notes)" ;;
    esac
    if [ $((DO_MATRIX + DO_CONNECT)) -gt 0 ]; then
        echo "- $ROUNDS round(s) of $DURATION s per target and cell, targets alternating" \
            "(each round starts with the next one), medians over rounds"
        echo "- 1-minute load average at the start of the runs: $(awk -F, 'NR > 1 {
            if (min == "" || $16 < min) min = $16; if ($16 > max) max = $16 }
            END { print min "–" max }' "$RAW") (2 cores; above ~3 means others are busy too)"
    fi
    echo "- command: bench/run.sh $ARGS"
    echo
}

storm_md() {
    echo "## Connection storm: $STORM_CLIENTS clients, pool $POOL_SIZE, -S simple, $STORM_DURATION s"
    echo
    echo "| pooler | status | tps | p99 ms | failed xacts | connection errors | aborted clients | connect all ms | CPU ms/1k xact | RSS start MB | RSS $STORM_CLIENTS idle MB | RSS peak MB | USS start MB | USS $STORM_CLIENTS idle MB | PSS $STORM_CLIENTS idle MB |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    awk -F, 'function mb(kb) { return kb == "-" || kb == "" ? "—" : sprintf("%.2f", kb / 1024) }
        NR > 1 {
        printf "| %s | %s | %.0f | %.1f | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n",
            $1, $5, $6, $9, $10, $21 + $23, $22 + $24, $11, $12, mb($13), mb($14), mb($16),
            mb($18), mb($19), mb($20) }' "$STORM_CSV"
    echo
    echo "failed xacts: pgbench's \"number of failed transactions\" under load; connection errors"
    echo "and aborted clients: pgbench's error lines, during the $STORM_CLIENTS idle logins and under load"
    echo "together (storm.csv has them apart). 0 in all three is the goal; warmpool-w2 is warmpool"
    echo "started with --workers 2."
    echo
    echo "RSS counts every page of a shared library the process has touched; USS (private"
    echo "clean + dirty pages) is what the process alone costs; PSS adds its share of shared pages."
    echo
}

report() {
    local md=$RESULTS/summary.md workloads modes targets
    {
        machine_header
        if [ "$(wc -l <"$RAW")" -gt 1 ]; then
            awk -F, -f "$BENCH/report.awk" -v csv="$RESULTS/summary.csv" \
                -v dat="$RESULTS/plot.dat" -v cores="$(nproc)" \
                -v want_w2="$(case " $TARGETS " in *" warmpool-w2 "*) echo 1 ;; *) echo 0 ;; esac)" "$RAW"
        fi
        [ -s "$STORM_CSV" ] && storm_md
        [ -s "$EXACT_CSV" ] && exact_md
        if [ -s "$NOTES" ]; then
            echo "## Notes"
            echo
            sed 's/^/- /' "$NOTES"
            echo
        fi
    } >"$md"
    if [ -s "$RESULTS/plot.dat" ] && command -v gnuplot >/dev/null; then
        workloads=$(awk -F, 'NR > 1 && $1 == "matrix" { print $2 }' "$RAW" | awk '!s[$0]++' | xargs)
        modes=$(awk -F, 'NR > 1 && $1 == "matrix" { print $3 }' "$RAW" | awk '!s[$0]++' | xargs)
        targets=$(awk -F, 'NR > 1 && $1 == "matrix" && $7 == "ok" { print $5 }' "$RAW" | awk '!s[$0]++' | xargs)
        gnuplot -e "dat='$RESULTS/plot.dat'; outdir='$RESULTS'; workloads='$workloads'; modes='$modes'; targets='$targets'" \
            "$BENCH/plot.gp" 2>"$RESULTS/gnuplot.log" || log "gnuplot failed, see $RESULTS/gnuplot.log"
    fi
    echo
    cat "$md"
    log "results in $RESULTS"
}

# ---------------------------------------------------------------- main

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
# The tree changes under us (other people commit); name what was measured: the checkout at
# start and the binary's build time.
WP_VERSION="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet 2>/dev/null || WP_VERSION="$WP_VERSION + uncommitted changes"
[ -e "$WARMPOOL" ] && WP_VERSION="$WP_VERSION, binary built $(date -r "$WARMPOOL" '+%F %T')"
pg_setup
PG_VERSION=$(pg_sql postgres 'show server_version')
EXACT_CSV=$RESULTS/exact.csv

if [ $((DO_MATRIX + DO_CONNECT)) -gt 0 ]; then
    start_targets
    warm_up
    if [ "$DO_MATRIX" = 1 ]; then run_matrix; fi
    if [ "$DO_CONNECT" = 1 ]; then run_connect; fi
    for t in $TARGETS; do
        if [ "$t" != direct ] && [ -n "${T_PID[$t]:-}" ]; then stop_target "$t"; fi
    done
fi
if [ "$DO_STORM" = 1 ]; then run_storm; fi
if [ "$DO_EXACT" = 1 ]; then run_exact; fi
report
