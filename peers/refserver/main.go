// Command refserver is the project's seed server written in Go: the reference the
// ingest benchmark measures statserver against. Like the seed it upgrades every request
// to a WebSocket with gorilla/websocket and decodes each binary frame with a fresh
// encoding/gob decoder into the v0.10 StatMessage (or, with -format proto, as a protobuf
// WireStatMessages), each text frame as JSON, and hands the stats on over a channel.
// It only counts them: GET /metrics shows statserver_stats_received_total.
//
// See ../README.md for the flags.
package main

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protowire"
)

// The seed's StatMessage: Knative v0.10's wire type.
type namespacedName struct{ Namespace, Name string }

type stat struct {
	Time                             time.Time
	PodName                          string
	AverageConcurrentRequests        float64
	AverageProxiedConcurrentRequests float64
	RequestCount                     float64
	ProxiedRequestCount              float64
	ProcessUptime                    float64 // v0.12 and later; not in gob frames of the seed's era
}

type statMessage struct {
	Key  namespacedName
	Stat stat
}

// jsonMessage is a v0.16-v0.19 text frame.
type jsonMessage struct {
	Key  namespacedName
	Stat struct {
		PodName                          string  `json:"pod_name"`
		AverageConcurrentRequests        float64 `json:"average_concurrent_requests"`
		AverageProxiedConcurrentRequests float64 `json:"average_proxied_concurrent_requests"`
		RequestCount                     float64 `json:"request_count"`
		ProxiedRequestCount              float64 `json:"proxied_request_count"`
		ProcessUptime                    float64 `json:"process_uptime"`
		Timestamp                        int64   `json:"timestamp"`
	}
}

var (
	received atomic.Int64 // stats decoded and handed on
	rejected atomic.Int64 // frames that did not decode
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address (port 0: any free port)")
	format := flag.String("format", "gob", "how binary frames are decoded: gob (the seed's v0.10 StatMessage) or proto (WireStatMessages); text frames are always JSON")
	flag.Parse()
	var decodeBinary func([]byte) ([]statMessage, error)
	switch *format {
	case "gob":
		decodeBinary = decodeGob
	case "proto":
		decodeBinary = decodeProto
	default:
		fmt.Fprintf(os.Stderr, "refserver: -format must be gob or proto, not %q\n", *format)
		os.Exit(2)
	}

	// Like the seed's statsCh: the stats go on to a consumer (here one that drops them).
	stats := make(chan []statMessage, 1024)
	go func() {
		for range stats {
		}
	}()

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "refserver: %v\n", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", serveMetrics)
	mux.Handle("/", &statsHandler{decodeBinary: decodeBinary, stats: stats, errs: newRateLimitedLog(time.Second)})
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		server.Close()
	}()
	fmt.Printf("refserver: listening on %s, binary frames as %s\n", listener.Addr(), *format)
	if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "refserver: %v\n", err)
		os.Exit(1)
	}
}

type statsHandler struct {
	decodeBinary func([]byte) ([]statMessage, error)
	stats        chan<- []statMessage
	errs         *rateLimitedLog
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (h *statsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	defer conn.Close()
	for {
		kind, frame, err := conn.ReadMessage()
		if err != nil {
			return // a close frame (gorilla has answered it) or a broken connection
		}
		var msgs []statMessage
		if kind == websocket.TextMessage {
			msgs, err = decodeJSON(frame)
		} else {
			msgs, err = h.decodeBinary(frame)
		}
		if err != nil {
			rejected.Add(1)
			h.errs.Printf("%s: frame rejected: %v", r.RemoteAddr, err)
			continue
		}
		received.Add(int64(len(msgs)))
		h.stats <- msgs
	}
}

// decodeGob: a fresh decoder for each frame, as the seed did (each frame is a whole gob
// stream, its own type definitions first).
func decodeGob(frame []byte) ([]statMessage, error) {
	var m statMessage
	if err := gob.NewDecoder(bytes.NewReader(frame)).Decode(&m); err != nil {
		return nil, err
	}
	return []statMessage{m}, nil
}

func decodeJSON(frame []byte) ([]statMessage, error) {
	var j jsonMessage
	if err := json.Unmarshal(frame, &j); err != nil {
		return nil, err
	}
	s := j.Stat
	m := statMessage{Key: j.Key, Stat: stat{
		PodName: s.PodName, AverageConcurrentRequests: s.AverageConcurrentRequests,
		AverageProxiedConcurrentRequests: s.AverageProxiedConcurrentRequests,
		RequestCount:                     s.RequestCount, ProxiedRequestCount: s.ProxiedRequestCount,
		ProcessUptime: s.ProcessUptime}}
	if s.Timestamp != 0 {
		m.Stat.Time = time.Unix(s.Timestamp, 0)
	}
	return []statMessage{m}, nil
}

// decodeProto reads a WireStatMessages (statserver/wire/stat.proto) field by field.
func decodeProto(frame []byte) ([]statMessage, error) {
	var msgs []statMessage
	err := fields(frame, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		var m statMessage
		err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				m.Key.Namespace = string(v)
			case num == 2 && typ == protowire.BytesType:
				m.Key.Name = string(v)
			case num == 3 && typ == protowire.BytesType:
				return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					s := &m.Stat
					f := math.Float64frombits(x)
					switch {
					case num == 1 && typ == protowire.BytesType:
						s.PodName = string(v)
					case num == 2 && typ == protowire.Fixed64Type:
						s.AverageConcurrentRequests = f
					case num == 3 && typ == protowire.Fixed64Type:
						s.AverageProxiedConcurrentRequests = f
					case num == 4 && typ == protowire.Fixed64Type:
						s.RequestCount = f
					case num == 5 && typ == protowire.Fixed64Type:
						s.ProxiedRequestCount = f
					case num == 6 && typ == protowire.Fixed64Type:
						s.ProcessUptime = f
					case num == 7 && typ == protowire.VarintType:
						s.Time = time.Unix(int64(x), 0)
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
		return nil
	})
	return msgs, err
}

// fields calls each with every field of a protobuf message: bytes fields' contents in v,
// varint and fixed-width values in x; groups are refused.
func fields(b []byte, each func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(b)
			x = uint64(x32)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("field %d: wire type %d not supported", num, typ)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := each(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	fmt.Fprintf(w, "# HELP statserver_stats_received_total Stats decoded and handed on.\n"+
		"# TYPE statserver_stats_received_total counter\n"+
		"statserver_stats_received_total %d\n"+
		"# HELP refserver_frames_rejected_total Frames that did not decode.\n"+
		"# TYPE refserver_frames_rejected_total counter\n"+
		"refserver_frames_rejected_total %d\n", received.Load(), rejected.Load())
}

// rateLimitedLog logs at most one line an interval and says how many it left out.
type rateLimitedLog struct {
	interval time.Duration
	mu       sync.Mutex
	last     time.Time
	dropped  int
}

func newRateLimitedLog(interval time.Duration) *rateLimitedLog {
	return &rateLimitedLog{interval: interval}
}

func (l *rateLimitedLog) Printf(format string, args ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.last) >= l.interval {
		if l.dropped > 0 {
			format += fmt.Sprintf(" (and %d more since the last line)", l.dropped)
		}
		log.Printf(format, args...)
		l.last, l.dropped = now, 0
		return
	}
	l.dropped++
}
