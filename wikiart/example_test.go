package wikiart_test

import (
	"fmt"
	"log"

	"github.com/artnet/artnet/wikiart"
)

// Load the ArtGAN splits, keeping only the rows whose image is in ../shared/wikiart/images
// (11 styles × 300 train + 60 val images).
func ExampleLoad() {
	train, val, classes, rep, err := wikiart.Load(wikiart.Options{Root: "../../shared/wikiart"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(classes["style"]), len(classes["genre"]), len(classes["artist"]))
	fmt.Println("train with style:", train.Count(wikiart.Style), "val with style:", val.Count(wikiart.Style))
	fmt.Println("conflicts:", len(rep.Conflicts), rep.Conflicts[0].File, rep.Conflicts[0].Labels)
	// Output:
	// 27 10 23
	// train with style: 3300 val with style: 660
	// conflicts: 1 genre_val.csv [1 4]
}
