"""Pivot of bench/poisoning_figures.py lines: per model / defense / attack, target HR@10 after at each
budget (mean over seeds, mean of the per-seed 95% bootstrap bounds over users, n = seeds) and full-catalog HR@50.

    python bench/poisoning_pivot.py results/poisoning/figures*.jsonl
"""
import json, sys, numpy as np
from tabulate import tabulate
rows=[json.loads(l) for f in sys.argv[1:] for l in open(f)]
ok=[r for r in rows if 'summary' in r]
g={}
for r in ok: g.setdefault((r['model'],r['defense'],r['attack']),{}).setdefault(r['fake_users'],[]).append(r)
out=[]
for (m,d,a),by in sorted(g.items()):
    before=np.mean([x['summary']['clean']['target_hr@10'] for v in by.values() for x in v])
    fb=np.mean([x['summary']['clean']['target_full_hr@50'] for v in by.values() for x in v])
    cells=[]
    for b in (0.01,0.03,0.05):
        v=by.get(b)
        if not v: cells+=['-','-']; continue
        aft=np.mean([x['summary']['robust']['target_hr@10'] for x in v]); lo=np.mean([x['summary']['target_hr@10_after_ci'][0] for x in v]); hi=np.mean([x['summary']['target_hr@10_after_ci'][1] for x in v])
        cells.append(f"{aft:.3f} [{lo:.3f},{hi:.3f}] n{len(v)}")
        cells.append(f"{np.mean([x['summary']['robust']['target_full_hr@50'] for x in v]):.4f}")
    ndcg=np.mean([x['summary']['robust']['ndcg@10'] for v in by.values() for x in v]); ndcg0=np.mean([x['summary']['clean']['ndcg@10'] for v in by.values() for x in v])
    out.append([m,d,a,f"{before:.3f}",f"{fb:.4f}"]+cells+[f"{ndcg0:.3f}->{ndcg:.3f}"])
print(tabulate(out,headers=['model','defense','attack','HR@10 before','fullHR@50 before','HR@10 1%','fHR@50 1%','HR@10 3%','fHR@50 3%','HR@10 5%','fHR@50 5%','NDCG@10 clean->poisoned'],tablefmt='github'))
