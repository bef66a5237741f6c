package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	pongTimeout  = 10 * time.Second // a ping unanswered this long fails the connection
	closeTimeout = 30 * time.Second // the server's answer to our close frame, behind every frame it has not read yet
	writeTimeout = 30 * time.Second // a frame the server does not take in this long
)

// result is what happened on one connection.
type result struct {
	sent      []Stat // with -sent: the stats of the frames written, in order
	stats     int    // stats in the frames written
	frames    int
	pongs     int
	closeCode int // with -wait-close: the code of the server's close frame, 0 if none came
	err       error
}

// conn is one WebSocket to the server. Frames are written by sendOn alone; pings and
// close frames go through WriteControl, which gorilla allows from any goroutine; a reader
// goroutine takes in control frames (and drops any data frame).
type conn struct {
	ws    *websocket.Conn
	pongs chan string
	done  chan struct{} // closed when the reader stops: a close frame or a broken socket

	mu          sync.Mutex
	weClosed    bool  // we sent a close frame
	serverClose int   // the server's close code, 0 if none
	readErr     error // why the reader stopped
}

func sendOn(cfg *config, c int) (res result) {
	header := http.Header{}
	if cfg.host != "" {
		header.Set("Host", cfg.host)
	}
	if cfg.ramp > 0 {
		time.Sleep(cfg.ramp * time.Duration(c) / time.Duration(cfg.conns))
	}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := dialer.Dial(cfg.url, header)
	if err != nil {
		res.err = fmt.Errorf("dial: %w", err)
		return res
	}
	defer ws.Close()
	k := &conn{ws: ws, pongs: make(chan string, 1), done: make(chan struct{})}
	ws.SetPongHandler(func(payload string) error {
		select {
		case k.pongs <- payload:
		default: // a pong nobody waits for
		}
		return nil
	})
	ws.SetCloseHandler(k.onClose)
	go k.read()

	stop := make(chan struct{})
	pinger := make(chan error, 1)
	pinging := cfg.ping > 0
	if pinging {
		go func() { pinger <- k.pingEvery(cfg.ping, stop, &res.pongs) }()
	}
	stopPinging := func() error {
		if !pinging {
			return nil
		}
		pinging = false
		close(stop)
		return <-pinger
	}
	finish := func(err error) result {
		if perr := stopPinging(); err == nil {
			err = perr
		}
		res.err = err
		return res
	}

	began := time.Now()
	clock := func(frame int) time.Time {
		if cfg.rate > 0 { // frame k leaves k/rate seconds after the first
			time.Sleep(time.Until(began.Add(time.Duration(float64(frame) / cfg.rate * float64(time.Second)))))
		}
		return time.Now()
	}
	err = frames(cfg, c, clock, func(f Frame) bool {
		kind := websocket.BinaryMessage
		if f.Text {
			kind = websocket.TextMessage
		}
		ws.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := ws.WriteMessage(kind, f.Data); err != nil {
			res.err = fmt.Errorf("frame %d: %w", res.frames, err)
			return false
		}
		res.frames++
		res.stats += len(f.Stats)
		if cfg.sentPath != "" {
			res.sent = append(res.sent, f.Stats...)
		}
		return true
	})
	if err == nil {
		err = res.err
	}
	if err != nil {
		return finish(err)
	}
	if pinging {
		err = stopPinging()
		if err == nil {
			// the last ping goes out after the last frame: its pong says the server read them
			err = k.ping("last", &res.pongs)
		}
		if err != nil {
			return finish(err)
		}
	}
	if cfg.waitClose > 0 {
		select {
		case <-k.done:
		case <-time.After(cfg.waitClose):
		}
		res.closeCode = k.closeCode()
	}
	return finish(k.closeHandshake())
}

// read takes in frames until the socket breaks or a close frame comes; gorilla calls the
// ping (answered with a pong), pong and close handlers from here.
func (k *conn) read() {
	defer close(k.done)
	for {
		if _, _, err := k.ws.ReadMessage(); err != nil {
			k.mu.Lock()
			k.readErr = err
			k.mu.Unlock()
			return
		}
	}
}

// onClose records the server's close code and, when the server began the handshake,
// answers with the same code.
func (k *conn) onClose(code int, _ string) error {
	k.mu.Lock()
	k.serverClose = code
	answer := !k.weClosed
	k.mu.Unlock()
	if answer {
		msg := websocket.FormatCloseMessage(code, "") // empty for 1005, "no status"
		k.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeTimeout))
	}
	return nil
}

func (k *conn) closeCode() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.serverClose
}

// closeHandshake ends the connection: when the server has not closed it, send a close
// frame (1000) and wait for the server's.
func (k *conn) closeHandshake() error {
	select {
	case <-k.done:
		return k.unexpectedEnd()
	default:
	}
	k.mu.Lock()
	k.weClosed = true
	k.mu.Unlock()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := k.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeTimeout)); err != nil {
		return fmt.Errorf("sending close: %w", err)
	}
	select {
	case <-k.done:
		return k.unexpectedEnd()
	case <-time.After(closeTimeout):
		return fmt.Errorf("no close frame from the server within %v of ours", closeTimeout)
	}
}

// unexpectedEnd: the reader has stopped; nil when it stopped at a close frame.
func (k *conn) unexpectedEnd() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var closed *websocket.CloseError
	if errors.As(k.readErr, &closed) {
		return nil
	}
	return fmt.Errorf("connection ended without a close frame: %v", k.readErr)
}

// ping sends a ping and waits for its pong.
func (k *conn) ping(payload string, pongs *int) error {
	if err := k.ws.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(pongTimeout)); err != nil {
		return fmt.Errorf("sending ping: %w", err)
	}
	deadline := time.After(pongTimeout)
	for {
		select {
		case got := <-k.pongs:
			if got == payload {
				*pongs++
				return nil
			}
		case <-k.done:
			return fmt.Errorf("connection ended before the pong to ping %q", payload)
		case <-deadline:
			return fmt.Errorf("no pong received within %v of ping %q", pongTimeout, payload)
		}
	}
}

// pingEvery pings every interval until stop, each ping answered before the next.
func (k *conn) pingEvery(interval time.Duration, stop chan struct{}, pongs *int) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		case <-ticker.C:
			if err := k.ping(strconv.Itoa(i), pongs); err != nil {
				return err
			}
		}
	}
}
