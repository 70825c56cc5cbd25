#!/usr/bin/python3
"""linreg - the seed scenario's algorithm: least-squares linear regression over
every CSV dataset (columns x,y with a header), pure Python. Writes
results/model.json: {"slope", "intercept", "n"}."""
import csv
import json
import os

datasets = os.environ.get("UMBRA_DATASETS", "datasets")
results = os.environ.get("UMBRA_RESULTS", "results")
xs, ys = [], []
for name in sorted(os.listdir(datasets)):
    with open(os.path.join(datasets, name), newline="") as f:
        for row in csv.DictReader(f):
            xs.append(float(row["x"]))
            ys.append(float(row["y"]))
n = len(xs)
mean_x = sum(xs) / n
mean_y = sum(ys) / n
sxx = sum((x - mean_x) ** 2 for x in xs)
sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
slope = sxy / sxx
intercept = mean_y - slope * mean_x
with open(os.path.join(results, "model.json"), "w") as f:
    json.dump({"slope": slope, "intercept": intercept, "n": n}, f, sort_keys=True)
    f.write("\n")
print("fitted %d points: slope %.6f intercept %.6f" % (n, slope, intercept))
