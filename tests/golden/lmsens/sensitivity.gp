# `gnuplot sensitivity.gp` in this directory
set terminal pngcairo size 900,560 noenhanced
set output 'sensitivity.png'
set grid
set key outside right top
$G0 << EOD
0 7.049522
0.2500 8.468960
0.5000 12.439442
0.7500 21.978142
EOD
$G1 << EOD
0 7.049522
0.2500 8.120375
0.5000 12.447795
0.7500 18.835096
EOD
set title 'Sensitivity: one unit group pruned at a time (gm, no fine-tuning)'
set xlabel 'pruning rate of the group'
set ylabel 'ppl'
set xrange [0:1]
plot $G0 using 1:2 with linespoints lw 2 title 'lstm1 (16 units)', $G1 using 1:2 with linespoints lw 2 title 'lstm2 (16 units)', 8.811903 with lines dt 2 lc rgb 'black' title 'baseline + max rise'
