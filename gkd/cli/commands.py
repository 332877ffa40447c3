"""The commands: each reads its parsed flags into a config, calls one pipeline function and prints its summary.
torch and the pipelines are imported here, inside each command, never when the parser is built."""
from __future__ import annotations

import argparse
import os

from ..errors import ConfigError, check
from .outputs import OutputError, _check_json_beside_checkpoints, _finish, _JsonFirst, _run_failed, _why, \
    check_distinct_outputs
from .parser import flags


def _check_json(path: str | None) -> None:
    """``--json`` can be written (checked before anything loads)."""
    if path is not None:
        from ..io import check_output_file

        check_output_file(path)


def use_threads(args: argparse.Namespace) -> None:
    """``--threads N``: torch computes with N CPU threads; without it, torch's own choice stands."""
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from ..config import TrainConfig, make_config
    from ..pipeline.train import run_training
    from ..train import fmt

    from ..scale.distributed import dist_env, init_from_env, peer_failures, rank_and_world

    use_threads(args)
    cfg = make_config(args.config, flags(args, [f.name for f in dataclasses.fields(TrainConfig)]))
    check_distinct_outputs({"--save": args.save, "--json": args.json})
    _check_json_beside_checkpoints(args.json, args.checkpoint_dir)
    _check_json(args.json)
    if dist_env()[1] > 1:  # checked before any rank waits on its peers
        check(cfg.batch_size is not None, "multi-process training (torchrun) trains on mini-batches, each rank on "
              "its share of the seed nodes: pass --batch-size", ConfigError)
        check(not (args.checkpoint_dir or args.save), "--checkpoint-dir and --save are not supported under torchrun "
              "yet (ranks would disagree on which seeds remain); run the seeds as separate torchrun jobs instead",
              ConfigError)
    init_from_env()
    rank, world = rank_and_world()
    first = _JsonFirst(args.json, world)
    with peer_failures():
        try:
            result = run_training(cfg, save=args.save, progress=False if args.quiet or rank else None,
                                  checkpoint_dir=args.checkpoint_dir, resume=args.resume, before_save=first)
        except OSError as e:
            raise _run_failed(e, args.save, args.json, first.written) from None
    result["world_size"] = world
    if rank:
        return 0
    _finish(None if first.written else args.json, result,
            f"{result['dataset']}  {result['model']}  {result['method']}  runs={len(result['runs'])}  "
            f"test {fmt(result['test_mean'], result['test_std'])}  val {fmt(result['val_mean'], result['val_std'])}"
            f"  ({result['seconds']:.1f}s)\n{_protocol(result)}", args.save)
    return 0


def _protocol(result: dict) -> str:
    """The experiment, stated: the score, the split protocol, the edge policy, and the arrays a file held unread."""
    unused = result.get("unused_arrays") or []
    return (f"  {result.get('metric', 'acc')}; split: {result.get('split')}; edges: {result.get('edges')}"
            + (f"; unused arrays: {', '.join(unused)}" if unused else ""))


def cmd_distill(args: argparse.Namespace) -> int:
    import dataclasses

    from ..config import make_config
    from ..pipeline.gnn2mlp import DistillConfig, run_distillation
    from ..train import fmt

    from ..scale.distributed import init_from_env, peer_failures, rank_and_world

    use_threads(args)
    cfg = make_config(args.config, flags(args, [f.name for f in dataclasses.fields(DistillConfig)]), DistillConfig)
    check_distinct_outputs({"--save": args.save, "--json": args.json, "--book": cfg.book})
    _check_json_beside_checkpoints(args.json, args.checkpoint_dir)
    _check_json(args.json)
    if init_from_env() and cfg.book is None:
        raise ConfigError("multi-process distillation (torchrun) learns from a knowledge book: make one with "
                          "`gkd book` and pass --book")
    rank, world = rank_and_world()
    if world > 1 and (args.checkpoint_dir or args.save):
        raise ConfigError("--checkpoint-dir and --save are not supported under torchrun yet (ranks would disagree "
                          "on which seeds remain); run the seeds as separate torchrun jobs instead")
    first = _JsonFirst(args.json, world)
    with peer_failures():
        try:
            r = run_distillation(cfg, progress=False if args.quiet or rank else None,
                                 checkpoint_dir=args.checkpoint_dir, resume=args.resume, save=args.save,
                                 before_save=first)
        except OSError as e:
            raise _run_failed(e, args.save, args.json, first.written) from None
    r["world_size"] = world
    if rank:
        return 0
    line = (f"{r['dataset']}  {r['teacher']}({r['teacher_method']}) -> {r['student']}  {r['method']}"
            f"{'+' + '+'.join(r['terms']) if r['terms'] else ''}  {r['setting']}  runs={len(r['runs'])}\n"
            f"  teacher test {fmt(r['teacher_test_mean'], r['teacher_test_std'])}   "
            f"student test {fmt(r['test_mean'], r['test_std'])}  val {fmt(r['val_mean'], r['val_std'])}")
    if r["setting"] == "inductive":
        line += (f"\n  inductive: student tran {fmt(r['test_tran_mean'], r['test_tran_std'])}  "
                 f"ind {fmt(r['test_ind_mean'], r['test_ind_std'])}  prod {fmt(r['test_mean'], r['test_std'])}   "
                 f"teacher tran {fmt(r['teacher_test_tran_mean'], r['teacher_test_tran_std'])}  "
                 f"ind {fmt(r['teacher_test_ind_mean'], r['teacher_test_ind_std'])}")
        if "test_ind_graph_aided_mean" in r:
            line += f"\n  graph-aided ind {fmt(r['test_ind_graph_aided_mean'], r['test_ind_graph_aided_std'])}"
    if "test_features_only_mean" in r:  # what new nodes get: features alone, no positions
        served = fmt(r["test_features_only_mean"], r["test_features_only_std"])
        line += (f"\n  served from features only (new nodes): test {served}  "
                 f"val {fmt(r['val_features_only_mean'], r['val_features_only_std'])}")
    line += f"  ({r['seconds']:.1f}s)\n{_protocol(r)}"
    kept = [x["guard"]["kept"] for x in r["runs"] if "guard" in x]
    for name, what in (("no terms", "the student without its terms"), ("plain", "the plainly trained student")):
        if name in kept:
            line += f"\n  guard: {what} was better on validation and kept in {kept.count(name)} of {len(kept)} seeds"
    _finish(None if first.written else args.json, r, line, args.save)
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    import dataclasses

    from ..config import make_config
    from ..pipeline.gnn2mlp import DistillConfig, make_book

    use_threads(args)
    cfg = make_config(None, flags(args, [f.name for f in dataclasses.fields(DistillConfig)]), DistillConfig)
    data, stage = make_book(cfg, args.out, float16=args.float16, overwrite=args.overwrite,
                            progress=False if args.quiet else None, checkpoint_dir=args.checkpoint_dir,
                            resume=args.resume)
    print(f"book {args.out}: {data.meta.name}, {len(stage.teacher_logits)} x {cfg.teacher} ({cfg.teacher_method}), "
          f"{cfg.setting}, teacher test {stage.scores['test'] * 100:.2f} ({stage.seconds:.1f}s)")
    return 0


def cmd_cnn(args: argparse.Namespace) -> int:
    import dataclasses

    from ..config import make_config
    from ..vision.pipeline import CNNDistillConfig, run_cnn_distillation
    from ..train import fmt

    use_threads(args)
    cfg = make_config(args.config, flags(args, [f.name for f in dataclasses.fields(CNNDistillConfig)]),
                      CNNDistillConfig)
    _check_json(args.json)
    r = run_cnn_distillation(cfg, progress=not args.quiet)
    line = f"{cfg.dataset}  {cfg.method}  student {cfg.student_channels}  runs={len(r['runs'])}  " \
           f"test {fmt(r['test_mean'], r['test_std'])}  val {fmt(r['val_mean'], r['val_std'])}"
    if "teacher_test_mean" in r:
        line += f"   teacher test {fmt(r['teacher_test_mean'], r['teacher_test_std'])}"
    _finish(args.json, r, line, None)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    import dataclasses

    from ..config import make_config
    from ..vision.pipeline import CNNDistillConfig, build_graph

    from ..config import read_yaml

    use_threads(args)
    cfg = make_config(args.config, flags(args, [f.name for f in dataclasses.fields(CNNDistillConfig)]),
                      CNNDistillConfig)
    if args.builder_value is None and "builder_value" not in (read_yaml(args.config, CNNDistillConfig)
                                                              if args.config else {}):
        # gkd graph's default; distillation (gkd cnn) keeps MHGD's learned values
        cfg = dataclasses.replace(cfg, builder_value="others").validate()
    k = 10 if args.k is None else args.k
    g = build_graph(cfg, args.out, k=k, directed=args.directed, embeddings=args.embeddings, progress=not args.quiet)
    line = f"graph {args.out}: {g['nodes']} nodes, {g['edges']} edges (k={k})"
    if g["homophily"] is not None:
        line += f", edge homophily {g['homophily']:.3f}"
    print(line)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..pipeline.serve import predict_features_to_file, predict_to_file

    use_threads(args)
    try:
        if args.features is not None:
            graph = [flag for flag, value in (("--dataset", args.dataset), ("--dataset-arg", args.dataset_args),
                                              ("--root", args.root), ("--mask", args.mask), ("--nodes", args.nodes))
                     if value is not None]
            check(not graph, f"--features answers feature rows without a graph; {', '.join(graph)} "
                  f"{'does' if len(graph) == 1 else 'do'} not apply: expected --features or a graph", ConfigError)
            rows = predict_features_to_file(args.model, args.features, args.out, device=args.device or "auto")
            print(f"predict {args.out}: {rows} rows of {args.features} with {args.model}")
            return 0
        data, nodes = predict_to_file(args.model, args.out, dataset=args.dataset, root=args.root,
                                      dataset_args=dict(args.dataset_args) if args.dataset_args else None,
                                      mask=args.mask, nodes=args.nodes,
                                      new_nodes=args.new_nodes, device=args.device or "auto")
    except OSError as e:
        if e.filename is None or os.path.abspath(e.filename) != os.path.abspath(args.out):
            raise  # not the write: reading the model or the graph
        raise OutputError(f"the predictions could not be written to {args.out!r}: {_why(e)}; {args.out!r} is as it "
                          "was") from None
    print(f"predict {args.out}: {nodes.numel()} nodes of {data.meta.name} with {args.model}")
    return 0


def cmd_terms(args: argparse.Namespace) -> int:
    from ..distill.registry import KINDS, markdown_table, table

    if args.markdown:
        print(markdown_table(args.kind), end="")
        return 0
    rows = table(args.kind)
    for kind in KINDS if args.kind is None else [args.kind]:
        print(f"{kind} terms: {KINDS[kind]}")
        for r in (r for r in rows if r["kind"] == kind):
            print(f"  {r['name']:16s} {r['paper']}  [{r['module']}]\n  {'':16s} {r['summary']}\n  {'':16s} "
                  f"can: {r['caps']}\n  {'':16s} " + " ".join(f"{k}={v}" for k, v in r["options"].items()))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..datasets.registry import describe, resolve_root

    print(f"data root: {resolve_root(args.root)}")
    for name, status, where in describe(args.root):
        print(f"{name:16s} {status:9s} {where}")
    return 0
