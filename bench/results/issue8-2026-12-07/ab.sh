#!/bin/bash
# alternate base and main bench runs; print examples/s train and infer
for round in 1 2 3; do
  for side in base main; do
    if [ $side = base ]; then M=/work/wt/base/build/mtl; else M=/work/main/build/mtl; fi
    for model in mmoe shared_bottom; do
      out=$($M bench --model $model --batch 1024 --threads 1 --quiet 2>&1 | tail -1)
      echo "$round $side $model $(echo "$out" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d.get("train_examples_per_s"), d.get("infer_examples_per_s"), d.get("auc_click"), d.get("auc_ctcvr"))')"
    done
  done
done
