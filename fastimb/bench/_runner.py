"""Runner of the fastimb-vs-imbalanced-learn comparison (``python -m fastimb.bench``)."""
import argparse
import hashlib
import importlib
import json
import multiprocessing
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class Case:
    """One sampler compared with its imbalanced-learn counterpart."""

    name: str
    module: str                       # over_sampling, under_sampling or combine
    params: dict = field(default_factory=dict)
    agreement: str = "identical"      # "identical": same arrays; "counts": same class counts
    incumbent_max_rows: int | None = None  # imbalanced-learn is run on a subsample above this
    fastimb_all_rows: bool = True     # also time fastimb alone on all rows when subsampled
    kind: str = "sampler"             # "sampler" (vs imbalanced-learn) or "kernel" (vs sklearn)


CASES = [
    Case("RandomOverSampler", "over_sampling", {"random_state": 0}),
    Case("RandomUnderSampler", "under_sampling", {"random_state": 0}),
    Case("SMOTE", "over_sampling", {"random_state": 0}),
    Case("ADASYN", "over_sampling", {"random_state": 0}),
    Case("BorderlineSMOTE", "over_sampling", {"random_state": 0}),
    Case("TomekLinks", "under_sampling", {}, incumbent_max_rows=50_000),
    # every majority row is a query: at 1M rows and high dimension that is minutes
    Case("EditedNearestNeighbours", "under_sampling", {}, incumbent_max_rows=50_000,
         fastimb_all_rows=False),
    # after SMOTE the classes are balanced, so the cleaning pass cannot skip the largest
    # class: at 1M rows and high dimension it is an all-rows exact search
    Case("SMOTETomek", "combine", {"random_state": 0}, incumbent_max_rows=50_000,
         fastimb_all_rows=False),
    Case("SMOTEENN", "combine", {"random_state": 0}, incumbent_max_rows=50_000,
         fastimb_all_rows=False),
    # kernels on (score, label) pairs derived from the data (see _scores)
    Case("threshold_sweep", "threshold", kind="kernel"),
    Case("best_threshold_f1", "threshold", agreement="f1 >= grid", kind="kernel"),
    Case("IsotonicRegression", "calibration", agreement="allclose", kind="kernel"),
]

INCUMBENTS = {
    "threshold_sweep": "sklearn confusion_matrix_at_thresholds",
    "best_threshold_f1": "sklearn 100-threshold F1 grid (TunedThresholdClassifierCV's)",
    "IsotonicRegression": "sklearn IsotonicRegression fit + predict",
}


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
def make_dataset(n_samples, n_features, weights, dtype="float64", seed=0):
    """Seeded make_classification data with the given class weights (read-only arrays)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=int(n_samples), n_features=int(n_features),
        n_informative=min(int(n_features), 5), n_redundant=0, n_classes=len(weights),
        n_clusters_per_class=1, weights=list(weights), flip_y=0.01, random_state=seed,
    )
    X = np.ascontiguousarray(X, dtype=dtype)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


REAL_DATASETS = ("breast_cancer", "digits")


def real_dataset(name, n_samples, minority=0.02, dtype="float64", seed=0, jitter=0.01):
    """A real tabular data set shipped with scikit-learn, made binary and imbalanced and
    enlarged to ``n_samples`` rows by drawing rows with replacement and adding Gaussian
    jitter (``jitter`` x each feature's standard deviation), so no two rows are equal.

    ``breast_cancer``: 30 features, malignant (minority) vs benign. ``digits``: 64 pixel
    features, the digit 0 (minority) vs the others.
    """
    from sklearn import datasets

    if name == "breast_cancer":
        X0, target = datasets.load_breast_cancer(return_X_y=True)
        y0 = (target == 0).astype(np.int64)
    elif name == "digits":
        X0, target = datasets.load_digits(return_X_y=True)
        y0 = (target == 0).astype(np.int64)
    else:
        raise ValueError(f"unknown data set {name!r}; choose among {REAL_DATASETS}")
    rng = np.random.RandomState(seed)
    n_min = max(2, int(round(n_samples * minority)))
    rows = np.concatenate([rng.choice(np.flatnonzero(y0 == 0), n_samples - n_min),
                           rng.choice(np.flatnonzero(y0 == 1), n_min)])
    rng.shuffle(rows)
    scale = X0.std(axis=0) * jitter
    X = X0[rows] + rng.standard_normal((rows.size, X0.shape[1])) * np.where(scale > 0, scale,
                                                                             jitter)
    X = np.ascontiguousarray(X, dtype=dtype)
    y = y0[rows]
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def stratified_subsample(X, y, n_rows, seed=0):
    """The first ``n_rows`` of a seeded, class-stratified shuffle (sorted, read-only)."""
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(y.shape[0]), train_size=int(n_rows), stratify=y,
                              random_state=seed)
    idx.sort()
    Xs, ys = X[idx], y[idx]
    Xs.setflags(write=False)
    ys.setflags(write=False)
    return Xs, ys


# ---------------------------------------------------------------------------------------
# measuring one run in a child process
# ---------------------------------------------------------------------------------------
def _proc_status_kib(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _digest(*arrays):
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.view(np.uint8).reshape(-1) if a.dtype != object else repr(a).encode())
    return h.hexdigest()


def _make_sampler(impl, case):
    package = "fastimb" if impl == "fastimb" else "imblearn"
    module = importlib.import_module(f"{package}.{case.module}")
    return getattr(module, case.name)(**case.params)


def _scores(X, y):
    """(0/1 labels, scores): the last class against the rest, scored by a fixed random
    projection through a sigmoid, rounded to 1e-6 so that scores tie as real ones do."""
    w = np.random.RandomState(0).normal(size=X.shape[1])
    s = np.round(1.0 / (1.0 + np.exp(-(np.asarray(X, dtype=np.float64) @ w))), 6)
    return (np.asarray(y) == np.max(y)).astype(np.int64), s


def _grid_best_f1(y, s, n_thresholds=100):
    from sklearn.metrics import f1_score

    grid = np.linspace(s.min(), s.max(), n_thresholds)
    return max(f1_score(y, (s >= t).astype(np.int64), zero_division=0) for t in grid)


def _make_kernel(impl, case):
    """A function (labels, scores) -> (arrays to digest, value, sample of the output)."""
    if case.name == "threshold_sweep":
        if impl == "fastimb":
            from fastimb.threshold import threshold_sweep

            def run(y, s):
                sw = threshold_sweep(y, s)
                return (sw.thresholds, sw.tp, sw.fp), None, None
        else:
            from sklearn.metrics import confusion_matrix_at_thresholds

            def run(y, s):
                _, fps, _, tps, thr = confusion_matrix_at_thresholds(y, s)
                return (thr, tps, fps), None, None
    elif case.name == "best_threshold_f1":
        if impl == "fastimb":
            from fastimb.threshold import best_threshold

            def run(y, s):
                return (), best_threshold(y, s, "f1").f1, None
        else:
            def run(y, s):
                return (), _grid_best_f1(y, s), None
    else:
        module = importlib.import_module("fastimb.calibration" if impl == "fastimb"
                                         else "sklearn.isotonic")

        def run(y, s):
            pred = module.IsotonicRegression(out_of_bounds="clip").fit(s, y).predict(s)
            return (), None, pred[::997].copy()
    return run


def _child(conn, impl, case, X, y, repeats, budget):
    try:
        times, peak_mib = [], None
        if case.kind == "kernel":
            labels_01, scores = _scores(X, y)
        for r in range(repeats):
            if case.kind == "kernel":
                task = _make_kernel(impl, case)
            else:
                sampler = _make_sampler(impl, case)
            if r == 0:
                can_measure = _reset_peak_rss()
                base_kib = _proc_status_kib("VmRSS")
            t0 = time.perf_counter()
            if case.kind == "kernel":
                arrays, value, sample = task(labels_01, scores)
            else:
                X_res, y_res = sampler.fit_resample(X, y)
            times.append(time.perf_counter() - t0)
            if r == 0:
                hwm = _proc_status_kib("VmHWM")
                if can_measure and hwm is not None and base_kib is not None:
                    peak_mib = max(0, hwm - base_kib) / 1024
                if case.kind == "kernel":
                    result = {"digest": _digest(*arrays), "value": value, "sample": sample,
                              "out_rows": int(scores.shape[0])}
                else:
                    labels, counts = np.unique(y_res, return_counts=True)
                    result = {
                        "digest": _digest(X_res, y_res,
                                          getattr(sampler, "sample_indices_", None)),
                        "counts": {str(k): int(v) for k, v in zip(labels, counts)},
                        "out_rows": int(y_res.shape[0]),
                    }
            if case.kind != "kernel":
                del X_res, y_res
            if sum(times) > budget:
                break
        result.update(times=times, peak_mib=peak_mib, error=None)
    except Exception as exc:  # reported in the table, never a traceback for the user
        result = {"error": f"{type(exc).__name__}: {exc}", "times": [],
                  "trace": traceback.format_exc()}
    conn.send(result)
    conn.close()


def measure(impl, case, X, y, repeats, budget):
    """Run ``case`` with ``impl`` in a forked child; return times, peak memory, digest."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, impl, case, X, y, repeats, budget))
    proc.start()
    child.close()
    try:
        result = parent.recv()
    except EOFError:
        result = {"error": f"the {impl} run died (exit code {proc.exitcode})", "times": []}
    proc.join()
    return result


# ---------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------
def _available(case):
    try:
        (_make_kernel if case.kind == "kernel" else _make_sampler)("fastimb", case)
        return True
    except (ImportError, AttributeError):
        return False


def _median(times):
    return float(np.median(times)) if times else None


def run(rows=1_000_000, features=20, weights=(0.98, 0.02), samplers=None, repeats=3,
        dtype="float64", budget=60.0, incumbent_max_rows=None, data="synthetic", log=print):
    """Compare fastimb with imbalanced-learn; return a list of result rows (dicts)."""
    cases = [c for c in CASES if samplers is None or c.name in samplers]
    unknown = set(samplers or ()) - {c.name for c in CASES}
    if unknown:
        raise ValueError(f"unknown sampler(s) {sorted(unknown)}; choose among "
                         f"{[c.name for c in CASES]}")
    if data == "synthetic":
        log(f"generating {rows:,} x {features} data (class weights {list(weights)}) ...")
        X, y = make_dataset(rows, features, weights, dtype=dtype)
    else:
        log(f"enlarging {data} to {rows:,} rows (minority share {weights[-1]}) ...")
        X, y = real_dataset(data, rows, minority=weights[-1], dtype=dtype)
        features = X.shape[1]
    subsamples = {}
    results = []
    for i, case in enumerate(cases, 1):
        head = f"[{i}/{len(cases)}] {case.name}"
        if not _available(case):
            log(f"{head}: not available in this fastimb version, skipped")
            results.append({"sampler": case.name, "status": "not available"})
            continue
        cap = case.incumbent_max_rows if incumbent_max_rows is None else incumbent_max_rows
        n_cmp = rows if cap is None or rows <= cap else cap
        if n_cmp < rows:
            if n_cmp not in subsamples:
                subsamples[n_cmp] = stratified_subsample(X, y, n_cmp)
            Xc, yc = subsamples[n_cmp]
        else:
            Xc, yc = X, y
        row = {"sampler": case.name, "rows": int(n_cmp), "features": int(features),
               "agreement_kind": case.agreement,
               "incumbent_name": INCUMBENTS.get(case.name, f"imblearn {case.name}")}
        for impl in ("fastimb", "incumbent"):
            log(f"{head}: {impl} on {n_cmp:,} rows ...", end=" ", flush=True)
            res = measure(impl, case, Xc, yc, repeats, budget)
            row[impl] = res
            log(f"{_median(res['times']):.3f} s" if res["times"] else res["error"])
        if n_cmp < rows and case.fastimb_all_rows:
            log(f"{head}: fastimb on all {rows:,} rows ...", end=" ", flush=True)
            res = measure("fastimb", case, X, y, repeats, budget)
            row["fastimb_full"] = res
            log(f"{_median(res['times']):.3f} s" if res["times"] else res["error"])
        results.append(_summarise(row))
    return results


def _summarise(row):
    ours, ref = row["fastimb"], row["incumbent"]
    t_ours, t_ref = _median(ours["times"]), _median(ref["times"])
    row["fastimb_s"], row["incumbent_s"] = t_ours, t_ref
    row["speedup"] = t_ref / t_ours if t_ours and t_ref else None
    kind = row["agreement_kind"]
    if ours.get("error") or ref.get("error"):
        row["agreement"] = "error: " + (ours.get("error") or ref.get("error"))
    elif kind == "identical":
        row["agreement"] = ("identical" if ours["digest"] == ref["digest"] else
                            "same class counts, arrays differ"
                            if "counts" in ours and ours["counts"] == ref["counts"]
                            else "DIFFERENT")
    elif kind == "allclose":
        row["agreement"] = ("allclose" if np.allclose(ours["sample"], ref["sample"],
                                                      rtol=1e-9, atol=1e-12)
                            else "DIFFERENT")
    elif kind == "f1 >= grid":
        ok = ours["value"] >= ref["value"] - 1e-12
        row["agreement"] = (f"F1 {ours['value']:.4f} (exact) vs {ref['value']:.4f} (grid)"
                            + ("" if ok else " DIFFERENT"))
    else:
        row["agreement"] = "same class counts" if ours["counts"] == ref["counts"] else "DIFFERENT"
    full = row.get("fastimb_full")
    row["fastimb_full_s"] = _median(full["times"]) if full else None
    row["status"] = "ok"
    return row


# ---------------------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------------------
def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def markdown_table(results, config):
    lines = [
        f"fastimb vs imbalanced-learn / scikit-learn — {config.get('data', 'synthetic')} data, "
        f"{config['rows']:,} rows x {config['features']} features, class weights {config['weights']}, {config['threads']} thread(s), "
        f"median of up to {config['repeats']} runs",
        "",
        "| sampler / kernel | rows compared | fastimb (s) | incumbent (s) | speed-up | runs |"
        " fastimb peak (MiB) | incumbent peak (MiB) | agreement | fastimb on all rows (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        if r.get("status") != "ok":
            lines.append(f"| {r['sampler']} | — | — | — | — | — | — | — | {r['status']} | — |")
            continue
        lines.append(
            f"| {r['sampler']} | {r['rows']:,} | {_fmt(r['fastimb_s'], '.3f')} | "
            f"{_fmt(r['incumbent_s'], '.3f')} | {_fmt(r['speedup'], '.1f')}x | "
            f"{len(r['fastimb']['times'])} / {len(r['incumbent']['times'])} | "
            f"{_fmt(r['fastimb'].get('peak_mib'), '.0f')} | "
            f"{_fmt(r['incumbent'].get('peak_mib'), '.0f')} | {r['agreement']} | "
            f"{_fmt(r['fastimb_full_s'], '.3f')} |"
        )
    if any(r.get("rows", config["rows"]) < config["rows"] for r in results if r.get("rows")):
        lines += ["", "Samplers with fewer rows compared: imbalanced-learn would take too long "
                  "on all rows, so both ran on the same stratified subsample; the last column "
                  "times fastimb on all rows."]
    lines += ["", "Runs: fastimb's / the incumbent's; a measurement stops repeating once its "
              f"runs add up to more than {_fmt(config.get('budget'), '.0f')} s. Each "
              "measurement runs in a fresh process, whose first run is usually the slowest "
              "(new memory, new threads) for both libraries.",
              "", "Peak memory: the largest resident set during one fit_resample (or kernel "
              "call), above what the process held before it (the data)."]
    kernels = [r["sampler"] for r in results if r["sampler"] in INCUMBENTS]
    if kernels:
        lines += ["", "Samplers are compared with imbalanced-learn's class of the same name. "
                  "Kernels run on (label, score) pairs from the data (the last class against "
                  "the rest, a fixed random projection through a sigmoid, rounded to 1e-6); "
                  "their incumbents: " + "; ".join(f"{k}: {INCUMBENTS[k]}" for k in kernels)
                  + "."]
    return "\n".join(lines) + "\n"


def bar_chart(results, path, title):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart written (pip install matplotlib)")
        return None
    rows = [r for r in results if r.get("speedup")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
    names = [r["sampler"] + ("" if r["rows"] == results[0].get("rows", r["rows"]) else
                             f" ({r['rows'] // 1000}k rows)") for r in rows]
    ax.barh(names, [r["speedup"] for r in rows], color="#3b7dd8")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("speed-up over imbalanced-learn (x, log scale)")
    for i, r in enumerate(rows):
        ax.text(r["speedup"], i, f" {r['speedup']:.1f}x", va="center")
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _environment():
    import sklearn
    import threadpoolctl

    import fastimb

    info = fastimb.show_config(file=open(os.devnull, "w"))
    info["imbalanced-learn"] = importlib.import_module("imblearn").__version__
    info["scikit-learn"] = sklearn.__version__
    info["machine"] = platform.machine()
    info["cpus"] = os.cpu_count()
    info["threadpools"] = threadpoolctl.threadpool_info()
    info["env"] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE",
                                                   "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}
    return info


def _parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m fastimb.bench", description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the data set")
    p.add_argument("--features", type=int, default=20, help="number of features")
    p.add_argument("--minority", type=float, default=0.02,
                   help="minority share of a binary problem (ignored with --weights)")
    p.add_argument("--weights", type=str, default=None,
                   help="comma-separated class weights, e.g. 0.9,0.07,0.03")
    p.add_argument("--samplers", type=str, default=None,
                   help="comma-separated sampler names (default: all)")
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    p.add_argument("--budget", type=float, default=60.0,
                   help="stop repeating a measurement after this many seconds")
    p.add_argument("--incumbent-max-rows", type=int, default=None,
                   help="override the per-sampler subsample size for slow incumbents")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--data", choices=("synthetic",) + REAL_DATASETS, default="synthetic",
                   help="make_classification data, or a real data set enlarged with jitter")
    p.add_argument("--out", type=str, default="bench_results", help="output directory")
    return p.parse_args(argv)


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        importlib.import_module("imblearn")
    except ImportError:
        print("imbalanced-learn is not installed: pip install 'fastimb[bench]' "
              "(or pip install imbalanced-learn)")
        return 2
    weights = ([float(w) for w in args.weights.split(",")] if args.weights
               else [1.0 - args.minority, args.minority])
    samplers = args.samplers.split(",") if args.samplers else None
    env = _environment()
    if args.data != "synthetic" and len(weights) != 2:
        print("error: the real data sets are binary; use --minority")
        return 2
    config = {"data": args.data, "rows": args.rows, "features": args.features, "weights": weights,
              "repeats": args.repeats, "budget": args.budget, "dtype": args.dtype,
              "threads": env["default_threads"]}
    print(f"fastimb {env['version']} (OpenMP {'on' if env['openmp'] else 'off'}, "
          f"{env['default_threads']} threads) vs imbalanced-learn {env['imbalanced-learn']}")
    t0 = time.perf_counter()
    try:
        results = run(args.rows, args.features, weights, samplers, args.repeats, args.dtype,
                      args.budget, args.incumbent_max_rows, args.data,
                      log=lambda *a, **k: print(*a, **{"flush": True, **k}))
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    config["features"] = next((r["features"] for r in results if "features" in r),
                              config["features"])
    os.makedirs(args.out, exist_ok=True)
    table = markdown_table(results, config)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"config": config, "environment": env, "results": results,
                   "cases": [asdict(c) for c in CASES]}, f, indent=1, default=str)
    png = bar_chart(results, os.path.join(args.out, "speedup.png"), table.splitlines()[0])
    print()
    print(table)
    print(f"written: {args.out}/results.md, results.json" + (", speedup.png" if png else "")
          + f"  (total {time.perf_counter() - t0:.0f} s)")
    bad = [r["sampler"] for r in results if "DIFFERENT" in str(r.get("agreement"))
           or "error" in str(r.get("agreement"))]
    return 1 if bad else 0
