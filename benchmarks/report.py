"""Writes benchmarks/results/README.md from the JSON files of the suite."""

from __future__ import annotations

import json

from common import RESULTS

ORDER = ["poster_random", "poster_trained", "linear", "mixed"]


def load(name):
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _spread(r: dict) -> str:
    per = r.get("wall_ratio_per_rep")
    return f" ({min(per):.2f}-{max(per):.2f})" if per and len(per) > 1 and max(per) > min(per) else ""


def solver_table(d) -> list[str]:
    out = [f"### `{d['problem']}`: {d['note']}", "",
           f"tol {d['tol']:g} (per-sample relative residual), max_iter {d['max_iter']}, m = {d['m']}, "
           + (f"on {d['env']['gpu']} (CUDA {d['env'].get('cuda')}, times from CUDA events), "
              if d["env"].get("gpu") else "")
           + f"{d['env']['threads']} threads, torch {d['env']['torch']}; one full-batch f evaluation "
           f"{1e3 * d['f_eval_s']:.1f} ms standalone, "
           f"{1e3 * d['results']['andersonn anderson'].get('f_full_batch_in_run_s', d['f_eval_s']):.1f} ms inside "
           f"andersonn's solves; state {d['state_mb']:.1f} MB; medians of {d['reps']} interleaved runs "
           "after a warm-up. Ratios are to `andersonn anderson` (x > 1: slower / more than ours); *wall x* is "
           "the median over repetitions of the ratio within a repetition, with its range.", "",
           "| solver | wall s | wall x | iterations | mean NFE | f-rows x | f ms/iter | overhead ms/iter "
           "| overhead % of f | peak live MB | peak RSS MB | max residual | converged |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in d["results"].items():
        out.append(
            f"| {k} | {r['wall_s']:.3f} | {r['wall_ratio']:.2f}{_spread(r)} | {r['iterations']:.0f} | {r['mean_nfe']:.1f} "
            f"| {r['f_rows_ratio']:.2f} | {1e3 * r['f_per_iter_s']:.1f} | {1e3 * r['overhead_per_iter_s']:.1f} "
            f"| {100 * r['overhead_fraction_of_f']:.0f}% | {r.get('live_peak_mb', float('nan')):.0f} "
            f"| {r['rss_peak_mb']:.0f} | {r['max_residual']:.1e} "
            f"| {100 * r['converged_fraction']:.0f}% |")
    ours = d["results"]["andersonn anderson"]
    batch_wide = d["batch"] * ours["iterations"]
    fwd = d["results"].get("andersonn forward", {})
    extra = ours.get("live_peak_mb", float("nan")) - fwd.get("live_peak_mb", float("nan"))
    out += ["", f"andersonn Anderson history (analytical): (2m+2) x state = {d['andersonn_history_mb_analytical']:.0f} MB "
                f"(F and G ring buffers, current and best iterate); measured: Anderson keeps {extra:.0f} MB more "
                f"live memory than forward iteration in the same loop ({extra / d['state_mb']:.1f} state copies; "
                f"the F and G buffers are 2m = {2 * d['m']}). Per-sample stopping evaluated "
                f"{ours['f_rows']:.0f} f-rows vs {batch_wide:.0f} for the same solver with a batch-wide stop "
                f"({100 * (1 - ours['f_rows'] / batch_wide):.0f}% less)."
                + (" The *reused buffers* row passes a `Workspace` kept across repetitions (what a DEQ layer "
                   "does by default): its history is allocated before the solve starts, so its peak live "
                   "and RSS columns do not include it." if "andersonn anderson, reused buffers" in d["results"]
                   else ""), ""]
    return out


def suite_section(suffix: str, heading: str, intro: str) -> list[str]:
    """A heading, its paragraph and the solver tables of the ``PROBLEM{suffix}.json`` files there are."""
    found = [d for d in (load(f"{name}{suffix}") for name in ORDER) if d]
    if not found:
        return []
    lines = [heading, "", intro, ""]
    for d in found:
        lines += solver_table(d)
    return lines


LOADED_TARGETS = {"tutorial anderson (reference)": 1.3, "torchdeq anderson": 1.5}


def loaded_section() -> list[str]:
    """The poster-layer suites measured idle and with a competing 2-thread process (``--competing-load``): how
    much faster than the peers this project stays on a busy machine, per repetition, median (range)."""
    rows, loads = [], {}
    for name in ("poster_random", "poster_trained"):
        idle, busy = load(name), load(f"{name}_loaded")
        if not busy:
            continue
        loads[name] = busy["competing_load"]
        for peer, target in LOADED_TARGETS.items():
            cells = []
            for d in (idle, busy):
                r = d["results"].get(peer) if d else None
                cells.append(f"{r['wall_ratio']:.2f}x{_spread(r)}" if r else "–")
            met = "yes" if busy["results"][peer]["wall_ratio"] >= target else "no"
            rows.append(f"| `{name}` | {peer} | {cells[0]} | {cells[1]} | {target:.1f}x | {met} |")
    if not rows:
        return []
    first, load_info = next(iter(loads.items()))
    return ["## The poster's layer on a busy machine (`suite.py PROBLEM --competing-load 2`)", "",
            f"The same suite with a second process running beside every solve ({load_info.get('what', '')}, "
            f"{load_info['threads']} threads; it kept {load_info.get('mean_busy_threads', float('nan')):.2f} threads busy "
            f"on average in the {first} run), started and stopped by the benchmark. Each cell is the peer's wall time "
            "over `andersonn anderson`'s in the same repetition: median (range) over repetitions; > 1 means this "
            "project is faster.", "",
            "| problem | peer | idle | loaded | target (loaded) | met |", "|---|---|---|---|---|---|", *rows, ""]


def time_to_accuracy_section(d: dict) -> list[str]:
    """The table of ``time_to_accuracy.py``: each recipe's training time to the target test accuracy, and its
    ratios against TorchDEQ's default recipe and against this project's standard (forward + IFT), one ratio
    per repetition (the same repetition's runs), as median and range."""
    from time_to_accuracy import speedup_per_rep

    target, res = d["target"], d["results"]

    def ratio(base, recipe):
        sp = speedup_per_rep(res[base]["per_rep"], res[recipe]["per_rep"], target) if base in res else None
        return f"{sp['median']:.2f}x ({sp['min']:.2f}-{sp['max']:.2f})" if sp else "–"

    lines = [f"## Time to {target:.0%} test accuracy ({d['dataset']}), against TorchDEQ 0.1.0", "",
             f"The poster's classifier, the same initial weights, data order, Adam and cosine schedule for every "
             f"recipe; {d['epochs']} epochs, batch {d['batch_size']}, lr {d['lr']:g}, tol {d['tol']:g} "
             f"(relative), max_iter {d['max_iter']}; {d['reps']} repetitions, each (recipe, repetition) in its own "
             "process, the recipes in a rotated order. Time is training time to the first epoch whose test "
             "accuracy reaches the target. Ratios: the other recipe's time over this one's, per repetition; "
             "median (range).", "",
             "| recipe | library | reached | time to target s, median (range) | vs TorchDEQ default "
             "| vs standard | final test accuracy |", "|---|---|---|---|---|---|---|"]
    for recipe, r in res.items():
        t = r["time_to_target_s"]
        lines.append(f"| {recipe} | {d['recipes'][recipe]['library']} | {r['reached_target']}/{r['runs']} | "
                     + (f"{t['median']:.1f} ({t['min']:.1f}-{t['max']:.1f})" if t else "never")
                     + f" | {ratio('torchdeq default', recipe)} | {ratio('standard', recipe)} | "
                     f"{r['final_test_accuracy']['median']:.3f} |")
    lines += ["", f"Best recipe of this project (median time to target, every repetition reaching it): "
                  f"**{d['best_andersonn_recipe']}**.", ""]
    return lines


def main() -> None:
    lines = ["# Benchmark results", "",
             "Generated by `make bench` (`benchmarks/run_all.py`); raw numbers in the JSON files next to this one.",
             "Columns: *wall x* and *f-rows x* are ratios to andersonn's Anderson; *f-rows* counts "
             "evaluations of f per sample summed over the batch (what per-sample stopping saves); "
             "*overhead* is wall time outside f per iteration, also as a share of one full-batch f evaluation "
             "timed inside the same solves (f seconds per row x batch; standalone back-to-back calls of f ran "
             "slower, which would flatter the share); "
             "*peak live* is the peak of malloc'd bytes above the level before the solve, read just before and "
             "after every call of f (glibc `mallinfo2`): what a solver keeps across iterations, without f's "
             "temporaries; "
             "*peak RSS* is the peak resident memory above the level before the solve, sampled every ~1 ms "
             "by a thread after `malloc_trim` in a separate untimed run (includes f's own temporaries); "
             "*max residual* is recomputed for every solver by one more f evaluation outside the timing. "
             "Every run starts after 0.5 s idle, so thread pools of the solver before it (SciPy's OpenBLAS "
             "keeps spinning after a call) have gone quiet.", ""]
    for name in ORDER:
        d = load(name)
        if d:
            lines += solver_table(d)
    lines += suite_section(
        "_cuda", "## The same suite on a GPU (`run_all.py --device cuda`)",
        "Wall and f times are CUDA-event times (synchronised before each solve, no synchronisation "
        "added inside the loops); *peak live* is the CUDA allocator's peak above the level before the "
        "solve, f's temporaries included; *peak RSS* does not apply. SciPy is CPU-only.")
    lines += loaded_section()
    lines += suite_section(
        "_tuned", "## The poster's layer with the `andersonn` command's allocator setting (`--tuned-allocator`)",
        "The same suite in a process that calls `andersonn.tune_cpu_allocator()` first (as the "
        "`andersonn` command does), so every solver in it, the peers included, runs with that "
        "glibc setting. The tables above are the fair default; these show what a user of the "
        "command gets against a peer run beside it. The setting does not help every solver: "
        "compare each row's overhead with the table above.")
    sc = load("speed_changes")
    if sc:
        lines += ["## Speed work, before/after (same process, interleaved)", "",
                  f"Before = solver package at commit `{sc['before']}`; after = this branch. "
                  "Overhead = time outside f per iteration (CPU time, steadier than wall time on a shared machine).",
                  "", "| problem / method | wall s before | wall s after | speedup | overhead ms/iter before (CPU) "
                  "| after (CPU) | f ms/iter (CPU) | same NFE |", "|---|---|---|---|---|---|---|---|"]
        for k, r in sc["results"].items():
            b, a = r["before"], r["after"]
            lines.append(f"| {k} | {b['wall_s']:.3f} | {a['wall_s']:.3f} | {r['wall_speedup']:.2f}x "
                         f"| {1e3 * b['overhead_cpu_per_iter_s']:.1f} | {1e3 * a['overhead_cpu_per_iter_s']:.1f} "
                         f"| {1e3 * a['f_cpu_per_iter_s']:.1f} | {r['same_nfe']} |")
        lines.append("")
    ab = load("ablations")
    if ab:
        lines += ["## Each speed change on its own (leave-one-out, `ablations.py`)", "",
                  "The shipped solver against the same solver with exactly one change switched off, in one "
                  f"process, interleaved in rotated order, {ab['reps']} repetitions. *slowdown* = variant wall "
                  "time / its baseline's wall time in the same repetition, median over repetitions with its "
                  "range (> 1: the change helps by that factor); the baseline is the shipped solver, or the "
                  "shipped solver with a closure f for the closure variant.", "",
                  "| problem | switched off | baseline | wall s | slowdown | overhead ms/iter | f-rows | same NFE |",
                  "|---|---|---|---|---|---|---|---|"]
        for prob, rows in ab["results"].items():
            for v, r in rows.items():
                per = r.get("slowdown_per_rep")
                spread = f" ({min(per):.2f}-{max(per):.2f})" if per and v != r.get("baseline", "full") else ""
                lines.append(f"| {prob} | {v} | {r.get('baseline', 'full')} | {r['wall_s']:.3f} "
                             f"| {r['slowdown']:.2f}x{spread} "
                             f"| {1e3 * r['overhead_per_iter_s']:.2f} | {r['f_rows']:.0f} | {r['same_nfe']} |")
        lines += ["", "What each variant switches off:", ""]
        for v, r in next(iter(ab["results"].values())).items():
            lines.append(f"- *{v}*: {r['switched_off']}")
        lines.append("")
    mp = load("malloc_probe")
    if mp:
        sm = mp["summary"]
        lines += ["## The CPU allocator setting (`malloc_probe.py`)", "",
                  "`andersonn.tune_cpu_allocator()` (called by the `andersonn` command) serves tensors up to "
                  "32 MiB from glibc's heap and keeps freed memory for reuse, instead of one `mmap` per tensor "
                  f"that is page-faulted in afresh every time. Fresh processes, default and tuned alternating, "
                  f"{mp['rounds']} rounds; speedup = default time / tuned time within a round (median, range). "
                  "The suite above runs with glibc's defaults, as a plain PyTorch process does.", "",
                  "| work | default s | tuned s | speedup |", "|---|---|---|---|"]
        names = {"anderson": "Anderson solve, poster layer (median of 3)",
                 "forward": "forward-iteration solve, poster layer (median of 3)",
                 "train": "one training epoch, demo dataset, Anderson"}
        for k, label in names.items():
            if k in sm:
                s_ = sm[k]
                lines.append(f"| {label} | {s_['default_s']:.3f} | {s_['tuned_s']:.3f} | {s_['speedup']:.2f}x "
                             f"({min(s_['speedup_per_round']):.2f}-{max(s_['speedup_per_round']):.2f}) |")
        lines += ["", f"Resident memory at the end of a child: {sm['rss_mb']['default']:.0f} MB default, "
                      f"{sm['rss_mb']['tuned']:.0f} MB tuned (freed heap is kept).", ""]
    tr = load("train_speed")
    if tr:
        variants = [(k, tr["results"][k]) for k in ("anderson", "anderson_batchwide_backward", "forward")
                    if k in tr["results"]]
        size = ", ".join(f"{k}={v}" for k, v in tr.get("dataset_options", {}).items())
        lines += [f"## Training-level speed ({tr.get('dataset', 'digits')}{' ' + size if size else ''}, "
                  "whole epochs, forward + IFT backward)", "",
                  f"{tr['epochs']} epochs from the same seed, tol {tr['tol']:g} forward and backward, "
                  f"max_iter {tr['max_iter']}, median of {tr['reps']} interleaved repetitions. "
                  "`anderson_batchwide_backward` is Anderson with the adjoint solve kept batch-wide "
                  "(`--no-backward-compact`), to attribute the backward compaction.", "",
                  "| variant | time/epoch s | forward NFE per step (by epoch) | backward NFE per step "
                  "| test accuracy by epoch |", "|---|---|---|---|---|"]
        for s, r in variants:
            lines.append(f"| {s} | {r['epoch_time_s']:.2f} | {', '.join(f'{x:.1f}' for x in r['forward_nfe_per_epoch'])} "
                         f"| {', '.join(f'{x:.1f}' for x in r['backward_nfe_per_epoch'])} "
                         f"| {', '.join(f'{x:.3f}' for x in r['test_accuracy'])} |")
        lines += ["", "Work per solve (forward solves include the test-set evaluation): iterations, and rows "
                      "really evaluated (f, or the adjoint's vector-Jacobian product; a batch-wide adjoint "
                      "solve pays for every row every iteration).",
                  "", "| variant | fwd iterations | fwd f-rows | fwd sum of per-sample NFE | bwd iterations "
                  "| bwd vjp-rows | bwd sum of per-sample NFE |", "|---|---|---|---|---|---|---|"]
        for s, r in variants:
            w = r.get("work", {})
            lines.append(f"| {s} | {w.get('fwd_iterations', 0):.1f} | {w.get('fwd_f_rows', 0):.0f} "
                         f"| {w.get('fwd_sum_nfe', 0):.0f} | {w.get('bwd_iterations', 0):.1f} "
                         f"| {w.get('bwd_f_rows', 0):.0f} | {w.get('bwd_sum_nfe', 0):.0f} |")
        lines += ["", f"Speedup (forward time / Anderson time): **{tr['speedup_wall']:.2f}x**; compute saved in "
                      f"mean NFE per sample (poster's terms): **{100 * tr['compute_saved_nfe']:.0f}%**; rows really "
                      f"evaluated saved: **{100 * tr.get('work_saved_rows', float('nan')):.0f}%**; wall time saved: "
                      f"**{100 * tr['time_saved']:.0f}%**."]
        if "speedup_backward_compaction" in tr:
            lines += ["", f"Backward compaction alone (batch-wide adjoint time / compacted adjoint time, both "
                          f"Anderson): **{tr['speedup_backward_compaction']:.2f}x**; Anderson with a batch-wide "
                          f"adjoint vs forward iteration: {tr['speedup_wall_batchwide_backward']:.2f}x."]
        lines.append("")
    for path in sorted(RESULTS.glob("time_to_accuracy_*.json")):
        lines += time_to_accuracy_section(json.loads(path.read_text()))
    notes = RESULTS / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text()]
    (RESULTS / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'README.md'}")


if __name__ == "__main__":
    main()
