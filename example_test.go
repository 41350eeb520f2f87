package artnet_test

import (
	"context"
	"fmt"
	"log"

	"github.com/artnet/artnet"
)

// Open the built-in default model, predict a painting from the repository's testdata and read
// the labels, the top-3 styles and the attention map. (The output is this small CPU-trained
// model's answer for The Starry Night; a new defaultmodel changes it.)
func Example() {
	m, err := artnet.OpenDefault(artnet.Options{TopK: 3})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	r, err := m.PredictFile(context.Background(), "testdata/paintings/van-gogh_the-starry-night.jpg")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("style:", r.Style.Label, "genre:", r.Genre.Label, "artist:", r.Artist.Label)
	for _, s := range r.Style.TopK {
		fmt.Printf("  %s %.2f\n", s.Label, s.Confidence)
	}
	att := r.AttentionMap()
	fmt.Printf("attention: %d×%d grid, %d classes of style\n", len(att), len(att[0]), len(m.Classes("style")))
	// Output:
	// style: Abstract_Expressionism genre: abstract_painting artist: Marc_Chagall
	//   Abstract_Expressionism 0.35
	//   Naive_Art_Primitivism 0.17
	//   Pop_Art 0.16
	// attention: 4×4 grid, 27 classes of style
}
