// Package train trains DeepArtNet with GoMLX: a seeded synthetic data set whose three labels
// are learnable from the pixels (style = palette, genre = stripe texture, artist = blob layout),
// the focal loss (γ = 2) with masked absent labels, Kendall 2018 uncertainty weighting of the
// three tasks, and a trainer (AdamW, linear warm-up then cosine decay, periodic atomic
// checkpoints, resume, per-task validation accuracy, JSONL metrics, a clean stop on NaN/Inf
// loss).
//
// The loss of a batch is
//
//	total = Σ_k present_k · ( exp(−s_k) · L_k + s_k ),  k ∈ {style, genre, artist}
//
// with L_k the focal loss −(1−p_t)^γ·log p_t averaged over the examples whose task-k label is
// present (label −1 = absent), present_k = 1 when the batch has at least one such label, and
// s_k = log σ_k² a learned scalar (variable uncertainty/log_var_<task>, initially 0).
//
// Run's output folder holds:
//
//	ckpt-<step, 8 digits>/  models.SaveCheckpoint directories (weights, batch-norm statistics,
//	                        Adam moments, global step, uncertainty weights, random state)
//	latest                  the name of the newest checkpoint, replaced atomically after each save
//	best/, best.json        with Options.KeepBest: the checkpoint with the best validation score
//	                        (mean top-1 over the present tasks) and its step, score and accuracy
//	metrics.jsonl           one JSON object per line: {"kind":"train","step",...,"task_loss",
//	                        "log_var","lr","seconds","images_per_sec","input_wait_seconds"} per
//	                        step and {"kind":"eval","step","accuracy",...} per evaluation
//	events.out.tfevents.*   the same scalars for TensorBoard (events.go), one file per Run
//	ema/                    with Options.EMADecay: the EMA of the weights at the newest checkpoint
//	                        (a model checkpoint; eval lines then carry "ema_accuracy")
//
// Training batches come from a bounded pipeline (batchStream: a feeder, Options.Workers loaders,
// at most Options.Prefetch batches ahead). The WikiArt data set (NewWikiArt) decodes its images
// as they are read — optionally through an ImageCache within a memory budget — and augments
// them per stream position with RandomResizedCrop on the image's own size. RunPhases trains the
// phases of a configuration (configs/*.yaml, `artnet train --config`) as successive Runs, each
// started from the previous phase's best checkpoint (InitFrom; a phase's init_from, or for the
// first phase train.pretrained, may name PyTorch weights instead: FileConfig.StartFrom) with its own Freeze list, records
// their options (run.json, phase<name>/options.json) and evaluates the result with package
// evaluate. The phases read one continuous training stream (Options.StreamStart): a phase
// starts at the position where the phases before it in the configuration end, so it draws new
// sampler epochs and new crops rather than replaying the first phase's.
//
// The recipe of timm and Lightning, each off unless configured: label smoothing and
// mixup/CutMix with soft targets per task (softloss.go, mix.go), TrivialAugment/RandAugment and
// random erasing (randaug.go), gradient accumulation and bf16 (recipe.go, precision.go), EMA of
// the weights (ema.go).
//
// Batches are a function of (seed, step): each epoch is a seeded permutation of the training
// set, so a resumed run (same data sets, same seed) continues exactly like an uninterrupted one.
package train
