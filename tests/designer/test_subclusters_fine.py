import numpy as np

from designer.engine.subclusters import ClusterCategoriser

from .test_subclusters import MODELS, blobs


def test_router_categories_cut_into_sub_clusters_stay_inside_their_category():
    emb, scores, _ = blobs(seed=2)
    # blobs 0-1 are 'x', 2-3 'y': each router category hides two blobs that the experts treat differently
    router = np.where(np.arange(len(scores)) < 80, "x", "y").astype("<U4")
    router[:3] = "rare"  # too few prompts to cut: stays whole
    cat = ClusterCategoriser(emb, scores, MODELS, cost="total", base=router, ks=(), sub_ks=(2,), inner_folds=3,
                             inner_repeats=2)
    held = np.arange(1, len(scores), 4)
    train = np.setdiff1d(np.arange(len(scores)), held)
    train_labels, held_labels = cat(train, held)
    assert cat.chosen[0]["chosen"] == "router*2" and set(cat.chosen[0]["inner_apgr"]) == {"router", "router*2"}
    for labels, idx in ((train_labels, train), (held_labels, held)):
        assert all(label.split("/")[0] == router[i] for label, i in zip(labels, idx))
    assert set(train_labels) == {"rare", "x/0", "x/1", "y/0", "y/1"}
