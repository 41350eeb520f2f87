package wikiart_test

import (
	"fmt"
	"log"

	"github.com/artnet/artnet/wikiart"
)

// Load the ArtGAN splits of the repository's data/wikiart, keeping only the rows whose image is
// in the repository's sample (testdata/wikiart/images: 11 styles × 2 train + 2 val images).
// With the full image set, Root alone is enough: images are read from Root/images.
func ExampleLoad() {
	train, val, classes, rep, err := wikiart.Load(wikiart.Options{Root: "../data/wikiart", Images: "../testdata/wikiart/images"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(classes["style"]), len(classes["genre"]), len(classes["artist"]))
	fmt.Println("train with style:", train.Count(wikiart.Style), "val with style:", val.Count(wikiart.Style))
	fmt.Println("conflicts:", len(rep.Conflicts), rep.Conflicts[0].File, rep.Conflicts[0].Labels)
	// Output:
	// 27 10 23
	// train with style: 22 val with style: 22
	// conflicts: 1 genre_val.csv [1 4]
}
