import json,collections,statistics as st
rows=collections.defaultdict(list)
for which in ['old','new']:
    for eng in ['pg','my']:
        for l in open(f'{eng}-k1-{which}.jsonl'):
            r=json.loads(l)
            if r.get('scenario')!='contention' or r.get('kind')!='run': continue
            key=(r['backend'],r['t'],r['procs'])
            rows[(key,which,r['strategy'])].append((0,r['goodput'],r.get('give_ups',0)))
cells=sorted({k for (k,w,s) in rows})
print('| cell | old: ck/FU per round | new: ck/FU per round | old median × FU | new median × FU | give-ups old/new |')
print('|---|---|---|---:|---:|---|')
for c in cells:
    out=[]
    meds=[]
    gu=[]
    for w in ['old','new']:
        fu=[x[1] for x in rows[(c,w,'for-update')]]
        ck=[x[1] for x in rows[(c,w,'ck-adaptive')]]
        rat=[a/b for a,b in zip(ck,fu)]
        out.append(', '.join(f'{r:.2f}' for r in rat))
        meds.append(st.median(rat))
        gu.append(sum(x[2] for x in rows[(c,w,'ck-adaptive')]))
    e,t,p=c
    print(f'| {e} K=1 T={t} P={p} | {out[0]} | {out[1]} | {meds[0]:.2f} | {meds[1]:.2f} | {gu[0]}/{gu[1]} |')
