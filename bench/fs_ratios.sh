#!/bin/bash
# fs_ratios.sh RAW.tsv [ENV.txt] - markdown from run_fs_bench.sh's rows (label test value unit rep):
# 1) medians per test and target (n runs, spread = (max-min)/median), 2) lsmfs / baseline ratios.
# "best FUSE" is the highest median among pll, pll_xattr, mergerfs and bindfs for that test; the
# floor of lsmfs is nullfs_wb (same FUSE options), of lsmfs_nowb nullfs_nowb. Every value is a rate
# (higher is better), so a ratio above 1 means lsmfs is faster.
set -u
RAW=${1:?usage: fs_ratios.sh raw.tsv [env.txt]}
ENVF=${2:-}
TAB=$(printf '\t')
MED=$(mktemp)
trap 'rm -f "$MED"' EXIT
grep -v '^#' "$RAW" | awk -F'\t' 'NF >= 4 && $3 != "NA" && $3 != ""' |
	sort -t"$TAB" -k1,1 -k2,2 -k3,3g |
	awk -F'\t' '
	function flush() {
		if (n == 0) return
		med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		sp = med > 0 ? 100 * (v[n] - v[1]) / med : 0
		printf "%s\t%s\t%s\t%d\t%.6g\t%.0f\n", cl, ct, cu, n, med, sp
		n = 0
	}
	{ if ($1 != cl || $2 != ct) { flush(); cl = $1; ct = $2; cu = $4 } v[++n] = $3 + 0 }
	END { flush() }' >"$MED"
TESTS=$(grep -v '^#' "$RAW" | awk -F'\t' 'NF >= 4 && !s[$2]++ { print $2 }')

if [ -n "$ENVF" ] && [ -f "$ENVF" ]; then
	echo '```'
	grep -v '^#   \|^#     ' "$ENVF" | grep -v '^# rep ' | sed 's/^# //'
	echo "load average at the start of each target (1/5/15 min):"
	awk '/^# rep /{t = $3 " " $4} /load:/{sub(/.*load: /, ""); sub(/; busiest.*/, ""); printf "  %s %s\n", t, $0}' "$ENVF" |
		awk '{ printf "%s%s", (NR % 4 == 1 ? "" : " |"), $0; if (NR % 4 == 0) print "" } END { if (NR % 4) print "" }'
	echo '```'
	echo
fi

awk -F'\t' -v T="$TESTS" '
function fmt(x) { return x == "" ? "–" : (x >= 1000 ? sprintf("%.0f", x) : (x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x))) }
function r(a, b) { return (a == "" || b == "" || b == 0) ? "–" : sprintf("%.2f", a / b) }
function cell(l, t) { k = l SUBSEP t; return (k in med) ? fmt(med[k]) (n[k] > 1 ? " (" sp[k] "%)" : "") : "–" }
BEGIN {
	nt = split(T, ta, "\n")
	nl = split("native pll pll_xattr mergerfs bindfs nullfs_wb nullfs_nowb nullfs_plain lsmfs lsmfs_nowb lsmfs_nokp2 lsmfs_noblob lsmfs_nospin", la, " ")
	nf = split("pll pll_xattr mergerfs bindfs", fl, " ")
}
{ k = $1 SUBSEP $2; med[k] = $5; n[k] = $4; sp[k] = $6; unit[$2] = $3; seen[$1] = 1 }
END {
	print "### Medians (in brackets: (max-min)/median over the runs)"
	print ""
	h = "| test | unit |"; s = "|---|---|"
	for (i = 1; i <= nl; i++) if (la[i] in seen) { h = h " " la[i] " |"; s = s "---:|" }
	print h; print s
	for (j = 1; j <= nt; j++) {
		t = ta[j]; line = "| " t " | " unit[t] " |"
		for (i = 1; i <= nl; i++) if (la[i] in seen) line = line " " cell(la[i], t) " |"
		print line
	}
	print ""
	print "### Ratios of medians (> 1: lsmfs faster). best FUSE = max(pll, pll_xattr, mergerfs, bindfs)"
	print ""
	print "| test | lsmfs/native | lsmfs/pll | lsmfs/pll_xattr | lsmfs/mergerfs | lsmfs/bindfs | lsmfs/best FUSE | lsmfs/floor (nullfs_wb) | nowb/best FUSE | nowb/floor (nullfs_nowb) | nowb/lsmfs |"
	print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for (j = 1; j <= nt; j++) {
		t = ta[j]
		if (t ~ /^(rss|anon)_peak/) continue
		best = ""
		for (i = 1; i <= nf; i++) { k = fl[i] SUBSEP t; if ((k in med) && (best == "" || med[k] > best)) best = med[k] }
		L = med["lsmfs" SUBSEP t]; W = med["lsmfs_nowb" SUBSEP t]
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t,
			r(L, med["native" SUBSEP t]), r(L, med["pll" SUBSEP t]), r(L, med["pll_xattr" SUBSEP t]),
			r(L, med["mergerfs" SUBSEP t]), r(L, med["bindfs" SUBSEP t]), r(L, best),
			r(L, med["nullfs_wb" SUBSEP t]), r(W, best), r(W, med["nullfs_nowb" SUBSEP t]), r(W, L)
	}
}' "$MED"
