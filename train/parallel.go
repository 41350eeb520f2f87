package train

import (
	"context"
	"sync"
)

// forEach calls work(i) for every i in [0, n) on `workers` goroutines (at least one). newWorker
// is called once per goroutine and returns that goroutine's work function, so each can own its
// scratch buffers. Feeding stops when ctx ends; forEach returns only after every goroutine has
// ended, with ctx's error if it stopped early.
func forEach(ctx context.Context, n, workers int, newWorker func() func(i int)) error {
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		work := newWorker()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				work(i)
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	return err
}
