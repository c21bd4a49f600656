import heapq, math, random, collections
import pytest
from feedback.models import Pair, Vote, Volunteer
from feedback.datasets.quality import quality_recompute
from tests.feedback import test_quality_crowd as T
from tests.feedback.test_quality_crowd import seeded  # noqa

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

def test_explore(settings, seeded):
    settings.CODEPREF = {**settings.CODEPREF, "QC_GOLD_RATE": 0.1, "QC_ONBOARDING_PAIRS": 3, "QC_LOW_AGREEMENT": 0.0}
    rng = random.Random(T.SEED)
    truth = T._human_pairs(rng); T._gold_pairs()
    gold = dict(Pair.objects.filter(state=Pair.State.GOLD).values_list("pk", "gold_choice"))
    members = T._crowd(rng)
    queue = [(m["clock"], n) for n, m in enumerate(members)]; heapq.heapify(queue)
    while queue:
        _c, n = heapq.heappop(queue)
        if T._turn(members[n], truth, gold, rng):
            heapq.heappush(queue, (members[n]["clock"], n))
    kind = {m["user"].pk: m["kind"] for m in members}
    acc = {m["user"].pk: m["accuracy"] for m in members}
    votes = list(Vote.objects.filter(pair_id__in=truth).values_list("volunteer_id", "pair_id", "choice"))
    share = collections.Counter(kind[v] for v, _, _ in votes)
    print("vote share by kind", {k: round(c / len(votes), 3) for k, c in share.items()})
    gvotes = list(Vote.objects.filter(pair_id__in=gold).values_list("volunteer_id", "pair_id", "choice"))
    print("gold votes per volunteer by kind", {k: round(sum(1 for v,_,_ in gvotes if kind[v]==k)/sum(1 for m in members if m['kind']==k),1) for k in T.CROWD})
    def accuracy(weight):
        sums = collections.defaultdict(lambda: collections.Counter())
        for v, p, c in votes:
            sums[p][c] += weight(v)
        right = 0
        for p, t in truth.items():
            s = sums[p]
            if s[t] > s["b" if t == "a" else "a"] + 1e-9:
                right += 1
        return right / len(truth)
    print("unweighted", accuracy(lambda v: 1))
    print("honest only", accuracy(lambda v: 1 if kind[v] == "honest" else 0))
    print("honest only, true log-odds", accuracy(lambda v: math.log(acc[v]/(1-acc[v])) if kind[v] == "honest" else 0))
    print("honest true linear 2p-1", accuracy(lambda v: 2*acc[v]-1 if kind[v] == "honest" else 0))
    stats = quality_recompute()
    w = dict(Vote.objects.filter(pair_id__in=truth).values_list("id", "weight")) if hasattr(Vote, "weight") else None
    tr = {v.user_id: v.trust for v in Volunteer.objects.all()}
    fl = {v.user_id: v.qc_flagged for v in Volunteer.objects.all()}
    print("QC trust weights (no flags)", accuracy(lambda v: tr[v] if tr[v] >= 0.2 else 0))
    print("QC trust, flagged out", accuracy(lambda v: tr[v] if tr[v] >= 0.2 and not fl[v] else 0))
    print("QC trust log-odds", accuracy(lambda v: math.log((1+tr[v])/(1-tr[v]+1e-6)) if tr[v] >= 0.2 and not fl[v] else 0))
    print("mean trust by kind", {k: round(sum(tr[m['user'].pk] for m in members if m['kind']==k)/sum(1 for m in members if m['kind']==k),3) for k in T.CROWD})
    hon = [(acc[m['user'].pk], tr[m['user'].pk]) for m in members if m['kind']=='honest']
    import numpy as np
    a = np.array(hon); print("honest corr(acc, trust)", np.corrcoef(a[:,0], a[:,1])[0,1])
