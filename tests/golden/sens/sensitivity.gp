# `gnuplot sensitivity.gp` in this directory
set terminal pngcairo size 900,560 noenhanced
set output 'sensitivity.png'
set grid
set key outside right top
$G0 << EOD
0 0.703387
0.2500 0.725577
0.5000 0.716286
0.7500 0.680967
EOD
$G1 << EOD
0 0.703387
0.2500 0.688942
0.5000 0.656850
0.7500 0.611941
EOD
$G2 << EOD
0 0.703387
0.2500 0.715085
0.5000 0.508215
0.7500 0.449334
EOD
set title 'Sensitivity: one unit group pruned at a time (gm, no fine-tuning)'
set xlabel 'pruning rate of the group'
set ylabel 'GAP@20'
set xrange [0:1]
plot $G0 using 1:2 with linespoints lw 2 title 'bilstm.fw (4 units)', $G1 using 1:2 with linespoints lw 2 title 'bilstm.bw (4 units)', $G2 using 1:2 with linespoints lw 2 title 'lstm2 (8 units)', 0.683387 with lines dt 2 lc rgb 'black' title 'baseline - max drop'
