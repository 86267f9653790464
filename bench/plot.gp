# bench/plot.gp — plots for a bench run (called by bench/run.sh).
#
#   gnuplot -e "dat='plot.dat'; outdir='DIR'; workloads='select-only tpcb'; \
#               modes='simple extended prepared'; targets='direct pgbouncer warmpool warmpool-w2'" plot.gp
#
# plot.dat (from report.awk) holds one block per "<workload> <mode>", rows:
#   clients direct_tps pgbouncer_tps warmpool_tps pgbouncer_cpu warmpool_cpu floor_tps
#   floor_cpu warmpool_w2_tps warmpool_w2_cpu   (NaN = none; floor = bench/floor/relay.c,
#   only with --floor; warmpool-w2 = warmpool with --workers 2)
# For each workload it draws tps-<workload>.png (tps vs clients, one panel per mode) and
# cpu-<workload>.png (pooler CPU ms per 1 000 transactions vs clients).

set terminal pngcairo size 1500,480 font ",10"
set datafile missing "NaN"
set logscale x
set xrange [0.7:800]
set xtics ("1" 1, "10" 10, "50" 50, "100" 100, "500" 500)
set xlabel "clients"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0   # headroom above the highest point
set grid
set key top left

tps_col(t) = t eq "direct" ? 2 : t eq "pgbouncer" ? 3 : t eq "floor" ? 7 : t eq "warmpool-w2" ? 9 : 4
cpu_col(t) = t eq "pgbouncer" ? 5 : t eq "floor" ? 8 : t eq "warmpool-w2" ? 10 : 6
# Each CPU panel also plots an invisible y=0 series: a panel where every pooler failed
# (PgBouncer 1.18 on -M prepared) must not stop gnuplot with "all points undefined".
colour(t) = t eq "direct" ? "#555555" : t eq "pgbouncer" ? "#1f77b4" : t eq "floor" ? "#2ca02c" : \
            t eq "warmpool-w2" ? "#ff7f0e" : "#d62728"
poolers = ""
do for [t in targets] { if (t ne "direct") { poolers = poolers . " " . t } }

do for [w in workloads] {
    set output sprintf("%s/tps-%s.png", outdir, w)
    set multiplot layout 1, words(modes) title sprintf("pgbench %s, transaction pooling: tps vs clients (median of rounds)", w)
    set ylabel "transactions/s"
    do for [m in modes] {
        set title m
        plot for [t in targets] dat index sprintf("%s %s", w, m) using 1:tps_col(t) \
            with linespoints lw 2 pt 7 lc rgb colour(t) title t
    }
    unset multiplot

    if (words(poolers) > 0) {
        set output sprintf("%s/cpu-%s.png", outdir, w)
        set multiplot layout 1, words(modes) title sprintf("pgbench %s: pooler CPU ms per 1 000 transactions (lower is better)", w)
        set ylabel "CPU ms / 1000 xact"
        do for [m in modes] {
            set title m
            plot for [t in poolers] dat index sprintf("%s %s", w, m) using 1:cpu_col(t) \
                with linespoints lw 2 pt 7 lc rgb colour(t) title t, \
            dat index sprintf("%s %s", w, m) using 1:(0) with lines lt nodraw notitle
        }
        unset multiplot
    }
}
