package preprocess

//go:generate go run ./internal/fixtures/gen -out ../testdata/images
