# bench/report.awk — medians and ratios from bench/results/*/raw.csv.
#
#   awk -F, -f bench/report.awk -v csv=summary.csv -v dat=plot.dat [-v cores=N] [-v want_w2=1] \
#       raw.csv > tables.md
#
# One cell is (case, workload, mode, clients); each target has one row per round. A cell's
# figure for a target is the median over its rounds; if any round of that target failed
# (status other than ok) the target is reported with that status instead ("fails").
# Writes: Markdown tables on stdout, the wide summary to csv, and gnuplot blocks named
# "<workload> <mode>" (clients, tps per target, CPU per pooler) to dat.
# warmpool-w2 (warmpool with --workers 2) gets its own table, "workers 1 vs 2", and the
# last columns of the csv (after floor_status, so that readers of the older columns by
# position keep working); cores (the machine's) chooses the sentence that explains it.
# want_w2=1 (warmpool-w2 was a target): the table is there even if warmpool-w2 never
# served, with "—" in its columns, as the main table has for a pooler that did not start.
# Plain POSIX awk (mawk has no asort).

function median(list,    v, n, i, j, x) {
    n = split(list, v, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) {            # insertion sort: a handful of rounds
        x = v[i] + 0
        for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]
        v[j + 1] = x
    }
    return n % 2 ? v[(n + 1) / 2] + 0 : (v[n / 2] + v[n / 2 + 1]) / 2
}

function ratio(a, b) { return (a != "" && b != "" && b + 0 > 0) ? sprintf("%.2f", a / b) : "" }
function fmt(x, f) { return x == "" ? "" : sprintf(f, x) }
function cellmd(x, st) { return st == "missing" || (st == "ok" && x == "") ? "—" : st != "ok" ? st : x }

# Figures for cell key k and target t: status S, medians TPS P99 AVG CPU USR (user part).
function figures(k, t,    kt) {
    kt = k SUBSEP t
    S = (kt in status) ? status[kt] : "missing"
    TPS = P99 = AVG = CPU = USR = ""
    if (S != "ok") return
    TPS = sprintf("%.0f", median(tps[kt]))
    P99 = fmt(median(p99[kt]), "%.2f")
    AVG = fmt(median(avg[kt]), "%.3f")
    CPU = fmt(median(cpu[kt]), "%.1f")
    USR = fmt(median(usr[kt]), "%.1f")
}

BEGIN { OFS = "," }
NR == 1 { next }
{
    k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
    kt = k SUBSEP $5
    if (!(k in seen)) { seen[k] = 1; order[++ncells] = k }
    if ($5 == "floor") has_floor = 1
    rounds[k] = ($6 > rounds[k]) ? $6 : rounds[k]
    if (!(kt in status)) status[kt] = "ok"
    if ($7 != "ok") { status[kt] = $7; next }
    tps[kt] = tps[kt] " " $8
    if ($11 != "-" && $11 != "") p99[kt] = p99[kt] " " $11
    if ($9 != "") avg[kt] = avg[kt] " " $9
    if ($15 != "-" && $15 != "") cpu[kt] = cpu[kt] " " $15
    if ($18 != "-" && $18 != "") usr[kt] = usr[kt] " " $18
}

END {
    label["select-only"] = "-S"; label["tpcb"] = "TPC-B"; label["select-only-connect"] = "-S -C"
    print "case,workload,mode,clients,rounds,direct_tps,pgbouncer_tps,warmpool_tps," \
          "direct_p99_ms,pgbouncer_p99_ms,warmpool_p99_ms," \
          "direct_lat_avg_ms,pgbouncer_lat_avg_ms,warmpool_lat_avg_ms," \
          "pgbouncer_cpu_ms_per_1k,warmpool_cpu_ms_per_1k," \
          "warmpool_over_direct_tps,warmpool_over_pgbouncer_tps,warmpool_over_pgbouncer_cpu," \
          "direct_status,pgbouncer_status,warmpool_status," \
          "pgbouncer_cpu_user_ms_per_1k,warmpool_cpu_user_ms_per_1k," \
          "floor_tps,floor_lat_avg_ms,floor_cpu_ms_per_1k,floor_cpu_user_ms_per_1k,floor_status," \
          "warmpool_w2_tps,warmpool_w2_p99_ms,warmpool_w2_lat_avg_ms,warmpool_w2_cpu_ms_per_1k," \
          "warmpool_w2_cpu_user_ms_per_1k,warmpool_w2_status,w2_over_w1_tps,w2_over_w1_cpu" > csv

    for (c = 1; c <= ncells; c++) {
        k = order[c]; split(k, f, SUBSEP)
        figures(k, "direct");    dS = S; dT = TPS; dP = P99; dA = AVG
        figures(k, "pgbouncer"); bS = S; bT = TPS; bP = P99; bA = AVG; bC = CPU; bU = USR
        figures(k, "warmpool");  wS = S; wT = TPS; wP = P99; wA = AVG; wC = CPU; wU = USR
        figures(k, "floor");     fS = S; fT = TPS; fA = AVG; fC = CPU; fU = USR
        figures(k, "warmpool-w2"); w2S = S; w2T = TPS; w2P = P99; w2A = AVG; w2C = CPU; w2U = USR
        rwd = ratio(wT, dT); rwb = ratio(wT, bT); rcpu = ratio(wC, bC)
        r21 = ratio(w2T, wT); r21cpu = ratio(w2C, wC)
        print f[1], f[2], f[3], f[4], rounds[k], dT, bT, wT, dP, bP, wP, dA, bA, wA, bC, wC,
              rwd, rwb, rcpu, dS, bS, wS, bU, wU, fT, fA, fC, fU, fS,
              w2T, w2P, w2A, w2C, w2U, w2S, r21, r21cpu > csv
        if (w2S != "missing" || want_w2)
            w2rows[f[1]] = w2rows[f[1]] sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                (f[2] in label) ? label[f[2]] : f[2], f[3], f[4],
                cellmd(wT, wS), cellmd(w2T, w2S), cellmd(r21, "ok"),
                cellmd(wP, wS), cellmd(w2P, w2S), cellmd(wA, wS), cellmd(w2A, w2S),
                cellmd(wC, wS), cellmd(w2C, w2S), cellmd(r21cpu, "ok"),
                user_kernel(wC, wU, wS), user_kernel(w2C, w2U, w2S))

        md = sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
            (f[2] in label) ? label[f[2]] : f[2], f[3], f[4],
            cellmd(dT, dS), cellmd(bT, bS), cellmd(wT, wS),
            cellmd(rwd, "ok"), cellmd(rwb, "ok"),
            cellmd(dP, dS), cellmd(bP, bS), cellmd(wP, wS),
            cellmd(bC, bS), cellmd(wC, wS), cellmd(rcpu, "ok"))
        rows[f[1]] = rows[f[1]] md "\n"
        if (f[4] == 1 && dA != "")
            added[f[1]] = added[f[1]] sprintf("| %s | %s | %s | %s | %s |%s\n",
                label[f[2]], f[3], sprintf("%.0f", dA * 1000),
                bA == "" ? "—" : sprintf("%+.0f", (bA - dA) * 1000),
                wA == "" ? "—" : sprintf("%+.0f", (wA - dA) * 1000),
                !has_floor ? "" : fA == "" ? " — |" : sprintf(" %+.0f |", (fA - dA) * 1000))
        if (has_floor && fS != "missing")
            floor_rows[f[1]] = floor_rows[f[1]] sprintf("| %s | %s | %s | %s | %s | %s | %s | %s |\n",
                (f[2] in label) ? label[f[2]] : f[2], f[3], f[4], cellmd(fT, fS), cellmd(fC, fS),
                cellmd(bC, bS), cellmd(wC, wS), cellmd(ratio(wC, fC), "ok"))

        if (bU != "" || wU != "")
            split_rows[f[1]] = split_rows[f[1]] sprintf("| %s | %s | %s | %s | %s | %s |%s\n",
                (f[2] in label) ? label[f[2]] : f[2], f[3], f[4], user_kernel(bC, bU, bS),
                user_kernel(wC, wU, wS), cellmd(ratio(wU, bU), "ok"),
                has_floor ? " " user_kernel(fC, fU, fS) " |" : "")
        if (f[1] == "matrix") {
            blk = f[2] " " f[3]
            if (!(blk in blocks)) { blocks[blk] = 1; border[++nblocks] = blk }
            data[blk] = data[blk] sprintf("%s %s %s %s %s %s %s %s %s %s\n", f[4], nan(dT), nan(bT),
                                          nan(wT), nan(bC), nan(wC), nan(fT), nan(fC),
                                          nan(w2T), nan(w2C))
        }
    }

    head = "| workload | mode | clients | tps direct | tps PgBouncer | tps warmpool | wp/direct | wp/PgB " \
           "| p99 ms direct | p99 ms PgB | p99 ms wp | CPU ms/1k xact PgB | CPU ms/1k xact wp | CPU wp/PgB |\n" \
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    if ("matrix" in rows) {
        print "## pgbench matrix (transaction pooling; median of rounds)\n"
        print head; printf "%s\n", rows["matrix"]
        print "tps and p99 latency as pgbench sees them (p99 from its per-transaction log); CPU is" \
              " the pooler process's user+system time from /proc/PID/stat per 1 000 transactions;" \
              " wp = warmpool. \"fails\": pgbench aborted or reported failed transactions.\n"
    }
    if ("matrix" in added) {
        print "### Latency added over direct, 1 client (mean, µs)\n"
        print "| workload | mode | direct mean µs | PgBouncer | warmpool |" (has_floor ? " floor relay |" : "")
        print "|---|---|---|---|---|" (has_floor ? "---|" : "")
        printf "%s\n", added["matrix"]
    }
    if ("matrix" in floor_rows) {
        print "### Kernel floor: floor-relay beside the poolers\n"
        print "floor-relay (bench/floor/relay.c) gives every client its own backend and does one" \
              " read and one write per readiness event, nothing else: its CPU per transaction and" \
              " added latency are what the kernel's loopback path costs any relay here. Its tps" \
              " is not pooled (50 clients = 50 backends) and is not comparable.\n"
        print "| workload | mode | clients | tps floor | CPU ms/1k xact floor | CPU PgB | CPU wp | CPU wp/floor |"
        print "|---|---|---|---|---|---|---|---|"
        printf "%s\n", floor_rows["matrix"]
    }
    if ("matrix" in split_rows) {
        print "### Where the pooler's CPU goes: user space / kernel, ms per 1 000 transactions\n"
        print "From utime and stime in /proc/PID/stat, which the kernel samples at clock ticks:" \
              " part of each system call's entry and exit is billed as user time (the floor" \
              " relay, with next to nothing to do in user space, shows how much). The kernel part" \
              " is the sockets' send/receive and epoll, the same system calls for every relay.\n"
        print "| workload | mode | clients | PgBouncer user / kernel | warmpool user / kernel | user wp/PgB |" \
              (has_floor ? " floor relay user / kernel |" : "")
        print "|---|---|---|---|---|---|" (has_floor ? "---|" : "")
        printf "%s\n", split_rows["matrix"]
    }
    if ("connect" in rows) {
        print "## Connect rate: pgbench -C (new connection per transaction)\n"
        print head; printf "%s\n", rows["connect"]
    }
    if (("matrix" in w2rows) || ("connect" in w2rows)) {
        print "## workers 1 vs 2: warmpool vs warmpool-w2 (same binary and config, `--workers 2`)\n"
        if (cores != "" && cores + 0 <= 2)
            print "Parity is expected on this " cores "-core machine: PostgreSQL and pgbench share" \
                  " the same two cores, so a second I/O thread has no idle core to run on; the design" \
                  " targets machines where one core is saturated by the pooler's socket I/O.\n"
        else
            print "warmpool-w2 can only gain where one core is saturated by the pooler's socket I/O" \
                  " (the case the design targets) and another core is idle for the second I/O thread;" \
                  " here PostgreSQL and pgbench run on the same " (cores != "" ? cores " " : "") \
                  "cores as the poolers.\n"
        w2head = "| workload | mode | clients | tps w1 | tps w2 | w2/w1 tps | p99 ms w1 | p99 ms w2 " \
                 "| avg ms w1 | avg ms w2 | CPU ms/1k xact w1 | CPU ms/1k xact w2 | w2/w1 CPU " \
                 "| user / kernel w1 | user / kernel w2 |\n" \
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        if ("matrix" in w2rows) { print "### pgbench matrix\n"; print w2head; printf "%s\n", w2rows["matrix"] }
        if ("connect" in w2rows) { print "### Connect rate (pgbench -C)\n"; print w2head; printf "%s\n", w2rows["connect"] }
        print "w1 = warmpool (workers = 1), w2 = warmpool-w2 (workers = 2); medians of the same" \
              " rounds as above, alternating with the other targets. CPU is that of the whole" \
              " process (all its threads), so w2/w1 CPU above 1 is the second thread's extra" \
              " work (hand-offs, wake-ups); on a busy machine one run's ratios move by tens of" \
              " percent: --exact --targets \"warmpool warmpool-w2\" counts it exactly.\n"
    }

    # Columns: clients direct_tps pgbouncer_tps warmpool_tps pgbouncer_cpu warmpool_cpu
    # floor_tps floor_cpu warmpool_w2_tps warmpool_w2_cpu
    for (b = 1; b <= nblocks; b++)
        printf "# %s\n%s\n\n", border[b], data[border[b]] > dat
}

function nan(x) { return x == "" ? "NaN" : x }
function user_kernel(c, u, st) {
    return st != "ok" ? cellmd("", st) : (c == "" || u == "") ? "—" : sprintf("%.1f / %.1f", u, c - u)
}
