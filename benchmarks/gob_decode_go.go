// Times Go's own fresh-decoder gob decode of one stats frame (hex on stdin), typed into
// the seed's StatMessage, for benchmarks/gob_decode.py --against-go:
//
//	GO111MODULE=off go run benchmarks/gob_decode_go.go < frame.hex
package main

import (
	"bytes"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

type NamespacedName struct{ Namespace, Name string }
type Stat struct {
	Time                             time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     float64
	ProxiedRequestCount              float64
}
type StatMessage struct {
	Key  NamespacedName
	Stat Stat
}

func main() {
	in, _ := io.ReadAll(os.Stdin)
	frame, err := hex.DecodeString(strings.TrimSpace(string(in)))
	if err != nil {
		panic(err)
	}
	var runs []float64
	for r := 0; r < 11; r++ {
		n := 200000
		start := time.Now()
		for i := 0; i < n; i++ {
			var m StatMessage
			if err := gob.NewDecoder(bytes.NewReader(frame)).Decode(&m); err != nil {
				panic(err)
			}
		}
		runs = append(runs, float64(time.Since(start).Nanoseconds())/float64(n)/1000)
	}
	sort.Float64s(runs)
	fmt.Printf("Go fresh gob.NewDecoder(...).Decode: median %.2f us, min %.2f us\n", runs[len(runs)/2], runs[0])
}
