package train

// Augment policies (data.augment).
const (
	AugmentTrivial = "trivial"
	AugmentRand    = "randaugment"
)
