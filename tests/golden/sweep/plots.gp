# lstmprune sweep plots: `cd sweep && gnuplot plots.gp` (data inline, from results.csv and spectra.csv)
set terminal pngcairo size 1200,520 noenhanced
set grid
set key outside right top
$S0 << EOD
# mean_rate gap_pruned gap_finetuned parameters latency_bn target
0.2083 0.684291 0.833150 1320 T 0.25
0.5417 0.485712 0.658973 680 T 0.50
EOD
$S1 << EOD
# mean_rate gap_pruned gap_finetuned parameters latency_bn target
0.2083 0.699122 0.848021 1320 T 0.25
0.5417 0.557107 0.690953 680 T 0.50
EOD
$S2 << EOD
# mean_rate gap_pruned gap_finetuned parameters latency_bn target
0.2500 0.777940 0.814653 1218 T 0.25
0.5000 0.752447 0.825162 734 T 0.50
EOD
$S3 << EOD
# mean_rate gap_pruned gap_finetuned parameters latency_bn target
0.2500 0.715617 0.863529 1218 T 0.25
0.5000 0.311970 0.825519 734 T 0.50
EOD
$S4 << EOD
# mean_rate gap_pruned gap_finetuned parameters latency_bn target
0.5417 0.750587 0.782661 680 T 0.50
EOD
$S5 << EOD
# mean_rate gap_pruned gap_finetuned parameters latency_bn target
0.5000 0.345603 0.773189 794 T 0.50
EOD
$S6 << EOD
# mean_rate gap_pruned gap_finetuned parameters latency_bn target
0.5000 0.614781 0.696125 734 T 0.50
EOD
$ISS << EOD
0.0833 0.582847 0.613126 1586 T 
EOD
$BASE << EOD
0.0000 0.827674 0.827674 1782 T 0.00
EOD
baseline_gap = 0.827674

set terminal pngcairo size 1500,600 noenhanced
set output 'gap_vs_rate.png'
set multiplot title 'GAP@20 vs mean pruning rate'
set tmargin at screen 0.88
set bmargin at screen 0.12
set title 'pruned, before fine-tuning'
set xlabel 'mean pruning rate over unit groups (achieved)'
set ylabel 'GAP@20'
set lmargin at screen 0.06
set rmargin at screen 0.36
unset key
plot $S0 using 1:2 with linespoints lw 2 lc rgb '#d62728' dt 1 pt 7 title 'oneshot eigen gm', \
     $S1 using 1:2 with linespoints lw 4 lc rgb '#d62728' dt 1 pt 7 title 'oneshot eigen gm +comp', \
     $S2 using 1:2 with linespoints lw 2 lc rgb '#1f77b4' dt 2 pt 7 title 'oneshot uniform l2', \
     $S3 using 1:2 with linespoints lw 4 lc rgb '#1f77b4' dt 2 pt 7 title 'oneshot uniform l2 +comp', \
     $S4 using 1:2 with linespoints lw 2 lc rgb '#d62728' dt 1 pt 8 title 'iterative eigen gm', \
     $S5 using 1:2 with linespoints lw 4 lc rgb '#d62728' dt 1 pt 8 title 'iterative eigen gm +comp', \
     $S6 using 1:2 with linespoints lw 2 lc rgb '#d62728' dt 2 pt 4 title 'soft uniform gm', \
     $ISS using 1:2 with points pt 9 ps 2 title 'ISS group lasso', \
     baseline_gap with lines dt 2 lc rgb 'black' title 'baseline (unpruned)'
set title 'after fine-tuning'
set xlabel 'mean pruning rate over unit groups (achieved)'
set ylabel 'GAP@20'
set lmargin at screen 0.47
set rmargin at screen 0.77
set key at screen 0.79,0.88 left top samplen 3
plot $S0 using 1:3 with linespoints lw 2 lc rgb '#d62728' dt 1 pt 7 title 'oneshot eigen gm', \
     $S1 using 1:3 with linespoints lw 4 lc rgb '#d62728' dt 1 pt 7 title 'oneshot eigen gm +comp', \
     $S2 using 1:3 with linespoints lw 2 lc rgb '#1f77b4' dt 2 pt 7 title 'oneshot uniform l2', \
     $S3 using 1:3 with linespoints lw 4 lc rgb '#1f77b4' dt 2 pt 7 title 'oneshot uniform l2 +comp', \
     $S4 using 1:3 with linespoints lw 2 lc rgb '#d62728' dt 1 pt 8 title 'iterative eigen gm', \
     $S5 using 1:3 with linespoints lw 4 lc rgb '#d62728' dt 1 pt 8 title 'iterative eigen gm +comp', \
     $S6 using 1:3 with linespoints lw 2 lc rgb '#d62728' dt 2 pt 4 title 'soft uniform gm', \
     $ISS using 1:3 with points pt 9 ps 2 title 'ISS group lasso', \
     baseline_gap with lines dt 2 lc rgb 'black' title 'baseline (unpruned)'
unset multiplot
set key outside right top
set lmargin -1
set rmargin -1
set tmargin -1
set bmargin -1
set terminal pngcairo size 1200,520 noenhanced

set output 'gap_vs_params.png'
set title 'GAP@20 after fine-tuning vs parameters'
set xlabel 'parameters'
set ylabel 'GAP@20'
plot $S0 using 4:3 with linespoints lw 2 lc rgb '#d62728' dt 1 pt 7 title 'oneshot eigen gm', \
     $S1 using 4:3 with linespoints lw 4 lc rgb '#d62728' dt 1 pt 7 title 'oneshot eigen gm +comp', \
     $S2 using 4:3 with linespoints lw 2 lc rgb '#1f77b4' dt 2 pt 7 title 'oneshot uniform l2', \
     $S3 using 4:3 with linespoints lw 4 lc rgb '#1f77b4' dt 2 pt 7 title 'oneshot uniform l2 +comp', \
     $S4 using 4:3 with linespoints lw 2 lc rgb '#d62728' dt 1 pt 8 title 'iterative eigen gm', \
     $S5 using 4:3 with linespoints lw 4 lc rgb '#d62728' dt 1 pt 8 title 'iterative eigen gm +comp', \
     $S6 using 4:3 with linespoints lw 2 lc rgb '#d62728' dt 2 pt 4 title 'soft uniform gm', \
     $ISS using 4:3 with points pt 9 ps 2 title 'ISS group lasso', \
     $BASE using 4:3 with points pt 5 ps 2 lc rgb 'black' title 'baseline'

set output 'gap_vs_latency.png'
set title 'GAP@20 after fine-tuning vs measured latency'
set xlabel 'latency of a no-gradient forward pass at batch N (ms, this machine)'
set ylabel 'GAP@20'
plot $S0 using 5:3 with linespoints lw 2 lc rgb '#d62728' dt 1 pt 7 title 'oneshot eigen gm', \
     $S1 using 5:3 with linespoints lw 4 lc rgb '#d62728' dt 1 pt 7 title 'oneshot eigen gm +comp', \
     $S2 using 5:3 with linespoints lw 2 lc rgb '#1f77b4' dt 2 pt 7 title 'oneshot uniform l2', \
     $S3 using 5:3 with linespoints lw 4 lc rgb '#1f77b4' dt 2 pt 7 title 'oneshot uniform l2 +comp', \
     $S4 using 5:3 with linespoints lw 2 lc rgb '#d62728' dt 1 pt 8 title 'iterative eigen gm', \
     $S5 using 5:3 with linespoints lw 4 lc rgb '#d62728' dt 1 pt 8 title 'iterative eigen gm +comp', \
     $S6 using 5:3 with linespoints lw 2 lc rgb '#d62728' dt 2 pt 4 title 'soft uniform gm', \
     $ISS using 5:3 with points pt 9 ps 2 title 'ISS group lasso', \
     $BASE using 5:3 with points pt 5 ps 2 lc rgb 'black' title 'baseline'
$G0 << EOD
# index fraction cumulative index/H
1 0.77688002 0.77688002 0.250000
2 0.17351308 0.95039310 0.500000
3 0.03855585 0.98894894 0.750000
4 0.01105106 1.00000000 1.000000
EOD
$G1 << EOD
# index fraction cumulative index/H
1 0.80513616 0.80513616 0.250000
2 0.14737528 0.95251144 0.500000
3 0.0435971 0.99610855 0.750000
4 0.00389145 1.00000000 1.000000
EOD
$G2 << EOD
# index fraction cumulative index/H
1 0.68376558 0.68376558 0.125000
2 0.21611625 0.89988183 0.250000
3 0.06649435 0.96637618 0.375000
4 0.02013989 0.98651607 0.500000
5 0.00656479 0.99308087 0.625000
6 0.0044626 0.99754347 0.750000
7 0.00172508 0.99926854 0.875000
8 0.00073146 1.00000000 1.000000
EOD

set output 'spectra.png'
set key inside right top
set multiplot layout 1,2 title 'Response covariance spectra of the baseline per unit group'
set title 'eigenvalue / total energy'
set xlabel 'eigenvalue index'
set ylabel 'fraction of energy'
set logscale y
plot $G0 using 1:($2 > 0 ? $2 : 1/0) with linespoints title 'bilstm.fw', $G1 using 1:($2 > 0 ? $2 : 1/0) with linespoints title 'bilstm.bw', $G2 using 1:($2 > 0 ? $2 : 1/0) with linespoints title 'lstm2'
unset logscale y
set key inside right bottom
set title 'cumulative energy'
set xlabel 'fraction of the group''s units (k/H)'
set ylabel 'energy kept'
set yrange [0:1.02]
plot $G0 using 4:3 with lines lw 2 title 'bilstm.fw', $G1 using 4:3 with lines lw 2 title 'bilstm.bw', $G2 using 4:3 with lines lw 2 title 'lstm2'
set yrange [*:*]
unset multiplot
set key outside right top

set output 'curves.png'
set datafile separator '\t'
set key inside right top
set multiplot layout 1,2 title 'Baseline training'
set title 'training loss per step'
set xlabel 'optimizer step'
set ylabel 'loss'
set logscale y
plot 'baseline/train.tsv' skip 1 using 1:4 with lines title 'loss'
unset logscale y
set key inside right bottom
set title 'validation after each epoch'
set xlabel 'epoch'
set ylabel 'metric'
plot 'baseline/valid.tsv' skip 1 using 1:4 with linespoints lw 2 title 'GAP@20', '' skip 1 using 1:5 with linespoints lw 2 title 'mAP', '' skip 1 using 1:6 with linespoints title 'Hit@1'
unset multiplot
set datafile separator whitespace
set key outside right top
