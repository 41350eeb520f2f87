// Package train trains DeepArtNet with GoMLX: a seeded synthetic data set whose three labels
// are learnable from the pixels (style = palette, genre = stripe texture, artist = blob layout),
// the focal loss (γ = 2) with masked absent labels, Kendall 2018 uncertainty weighting of the
// three tasks, and a trainer (AdamW, cosine schedule with warm-up, periodic atomic checkpoints,
// resume, per-task validation accuracy, JSONL metrics, a clean stop on NaN/Inf loss).
package train
