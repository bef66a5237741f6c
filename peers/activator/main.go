// Command activator is the sending side of Knative's stats protocol: it dials a stats
// server and sends stats in the wire format of one Knative release line (-era), the way
// that release's activator (or queue-proxy) writes them, over -conns connections at once.
// It answers the server's pings, can ping the server itself (-ping) and require pongs,
// ends each connection with the WebSocket close handshake, and writes what it sent to
// -sent FILE, one JSON object a stat, in the form a server should deliver it.
//
// See ../README.md for the flags and output.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

type config struct {
	url       string
	host      string
	era       *Era
	conns     int
	n         int
	batch     int
	ping      time.Duration
	waitClose time.Duration
	sentPath  string
	dump      bool
	rate      float64       // frames a second on each connection; 0: as fast as it can
	ramp      time.Duration // connections open spread evenly over this long
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("activator", flag.ContinueOnError)
	flags.SetOutput(stderr)
	cfg := config{}
	var eraName string
	flags.StringVar(&cfg.url, "url", "ws://127.0.0.1:8080/", "the stats server's WebSocket URL")
	flags.StringVar(&cfg.host, "host", "", "Host header to send (default: the URL's)")
	flags.StringVar(&eraName, "era", "seed", "wire format: "+strings.Join(EraNames(), ", ")+" (seed is v10)")
	flags.IntVar(&cfg.conns, "conns", 1, "connections, all sending at once")
	flags.IntVar(&cfg.n, "n", 100, "stats to send on each connection")
	flags.IntVar(&cfg.batch, "batch", 1, "stats a frame for the protobuf eras (the others send one a frame)")
	flags.DurationVar(&cfg.ping, "ping", 0, "ping the server this often while sending, and once more at the end; each ping must be answered within 10s")
	flags.DurationVar(&cfg.waitClose, "wait-close", 0, "after sending, wait up to this long for the server to close and print its close code")
	flags.Float64Var(&cfg.rate, "rate", 0, "frames a second on each connection (0: as fast as the server reads), as a fleet of pods sends")
	flags.DurationVar(&cfg.ramp, "ramp", 0, "open the connections spread evenly over this long instead of all at once")
	flags.StringVar(&cfg.sentPath, "sent", "", "write the stats sent to this file, one JSON object a line")
	flags.BoolVar(&cfg.dump, "dump", false, "write the frames to stdout as JSON lines (era, opcode, frame, stats) instead of sending them")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.era = Eras[eraName]
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "activator: unexpected argument %q\n", flags.Arg(0))
		return 2
	case cfg.era == nil:
		fmt.Fprintf(stderr, "activator: unknown era %q (one of %s)\n", eraName, strings.Join(EraNames(), ", "))
		return 2
	case cfg.conns < 1 || cfg.n < 0 || cfg.batch < 1 || cfg.rate < 0 || cfg.ramp < 0:
		fmt.Fprintln(stderr, "activator: -conns and -batch must be at least 1, -n, -rate and -ramp at least 0")
		return 2
	}
	if cfg.dump {
		return dump(&cfg, stdout, stderr)
	}
	return send(&cfg, stdout, stderr)
}

// Frame is one WebSocket message and the stats it carries.
type Frame struct {
	Text  bool
	Data  []byte
	Stats []Stat
}

// zones: each connection's clock is in one of these (connection 0 in the local zone),
// as activators run in pods with any TZ; the server must deliver the times in UTC.
var zones = []*time.Location{
	nil,
	time.FixedZone("IST", 5*3600+30*60),
	time.FixedZone("PDT", -7*3600),
	time.FixedZone("CHADT", 13*3600+45*60),
}

// measurement is connection c's i-th stat before an era trims it. The values are binary
// fractions (exact in every format, zero now and then so that zero fields are left out)
// plus a third, which checks that every float64 bit gets through.
func measurement(c, i int) Stat {
	return Stat{
		Namespace:                        fmt.Sprintf("ns-%d", c),
		Name:                             fmt.Sprintf("rev-%d", i%5),
		PodName:                          fmt.Sprintf("activator-%d", c),
		AverageConcurrentRequests:        float64(i%8)*0.375 + float64(c)/3,
		AverageProxiedConcurrentRequests: float64(i%3) * 0.5,
		RequestCount:                     float64(i%11) * 1.25,
		ProxiedRequestCount:              float64(i % 4),
		ProcessUptime:                    float64(i)*0.5 + float64(c),
	}
}

// frames calls emit with connection c's frames in order, the sender's time of each from
// clock; emit returns false to stop.
func frames(cfg *config, c int, clock func(frame int) time.Time, emit func(Frame) bool) error {
	per := 1
	if cfg.era.Batches {
		per = cfg.batch
	}
	for i, frame := 0, 0; i < cfg.n; i, frame = i+per, frame+1 {
		at := clock(frame)
		if zone := zones[c%len(zones)]; zone != nil {
			at = at.In(zone)
		}
		k := per
		if cfg.n-i < k {
			k = cfg.n - i
		}
		stats := make([]Stat, k)
		for j := range stats {
			stats[j] = cfg.era.Carries(measurement(c, i+j), at)
		}
		data, err := cfg.era.Encode(stats, at)
		if err != nil {
			return fmt.Errorf("encoding frame %d: %w", frame, err)
		}
		if !emit(Frame{Text: cfg.era.Text, Data: data, Stats: stats}) {
			return nil
		}
	}
	return nil
}

type dumped struct {
	Era    string `json:"era"`
	Opcode string `json:"opcode"`
	Frame  string `json:"frame"`
	Stats  []Stat `json:"stats"`
}

// dump writes the frames instead of sending them, with a fixed clock so that the output
// is the same from run to run.
func dump(cfg *config, stdout, stderr io.Writer) int {
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	base := time.Date(2020, time.March, 14, 15, 9, 26, 535897932, time.UTC)
	var failed error
	for c := 0; c < cfg.conns && failed == nil; c++ {
		clock := func(frame int) time.Time {
			return base.Add(time.Duration(c)*time.Hour + time.Duration(frame)*1001*time.Millisecond)
		}
		failed = frames(cfg, c, clock, func(f Frame) bool {
			opcode := "binary"
			if f.Text {
				opcode = "text"
			}
			failed = enc.Encode(dumped{Era: cfg.era.Name, Opcode: opcode, Frame: hex.EncodeToString(f.Data), Stats: f.Stats})
			return failed == nil
		})
	}
	if err := out.Flush(); failed == nil {
		failed = err
	}
	if failed != nil {
		fmt.Fprintf(stderr, "activator: %v\n", failed)
		return 1
	}
	return 0
}

// send runs every connection at once, then reports: a line per connection that failed
// (stderr) or, with -wait-close, saw a close (stdout), and a summary line.
func send(cfg *config, stdout, stderr io.Writer) int {
	results := make([]result, cfg.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range results {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			results[c] = sendOn(cfg, c)
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)

	stats, frameCount, pongs, failures := 0, 0, 0, 0
	for c, r := range results {
		stats += r.stats
		frameCount += r.frames
		pongs += r.pongs
		if cfg.waitClose > 0 {
			if r.closeCode != 0 {
				fmt.Fprintf(stdout, "close %d (connection %d)\n", r.closeCode, c)
			} else {
				fmt.Fprintf(stdout, "close none (connection %d)\n", c)
			}
		}
		if r.err != nil {
			failures++
			fmt.Fprintf(stderr, "activator: connection %d: %v\n", c, r.err)
		}
	}
	if cfg.sentPath != "" {
		if err := writeSent(cfg.sentPath, results); err != nil {
			fmt.Fprintf(stderr, "activator: %v\n", err)
			failures++
		}
	}
	rate := float64(stats) / elapsed.Seconds()
	fmt.Fprintf(stdout, "sent %d stats in %d frames over %d connections in %.3fs (%.0f stats/s), %d pongs, failures %d\n",
		stats, frameCount, cfg.conns, elapsed.Seconds(), rate, pongs, failures)
	if failures > 0 {
		return 1
	}
	return 0
}

func writeSent(path string, results []result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(f)
	enc := json.NewEncoder(out)
	for _, r := range results {
		for _, s := range r.sent {
			if err := enc.Encode(s); err != nil {
				f.Close()
				return err
			}
		}
	}
	if err := out.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
