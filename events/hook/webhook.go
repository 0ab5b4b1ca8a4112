package hook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// Webhook request headers.
const (
	HeaderHook      = "X-Geomatch-Hook"
	HeaderSignature = "X-Geomatch-Signature"
	HeaderDelivery  = "X-Geomatch-Delivery"
)

// maxErrorBody bounds how much of a failed response's body is read (and
// quoted in the error); a successful response's body is read up to
// maxDrainBody and dropped, so the connection is reused.
const (
	maxErrorBody = 512
	maxDrainBody = 64 << 10
)

// StatusError is a webhook's answer other than 2xx.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Body is the start of the response body.
	Body string
}

// Error names the status and quotes the body.
func (e *StatusError) Error() string {
	return fmt.Sprintf("webhook answered %d %s: %q", e.Code, http.StatusText(e.Code), e.Body)
}

// webhook POSTs batches to an http(s) endpoint.
type webhook struct {
	client   *http.Client
	url      string
	hookID   string
	bodyHead []byte // `{"hook":"<id>","events":[`
	secret   []byte
	headers  http.Header // the hook's extra headers
	timeout  time.Duration
}

func newWebhook(client *http.Client, h *geomatchv1.Hook, ep Endpoint, timeout time.Duration) *webhook {
	id, _ := json.Marshal(h.GetHookId()) // a string always marshals
	w := &webhook{
		client:   client,
		url:      ep.URL,
		hookID:   h.GetHookId(),
		bodyHead: append(append([]byte(`{"hook":`), id...), `,"events":[`...),
		secret:   []byte(h.GetSecret()),
		headers:  make(http.Header, len(h.GetHeaders())),
		timeout:  timeout,
	}
	for k, v := range h.GetHeaders() {
		w.headers.Set(k, v)
	}
	return w
}

// Deliver POSTs the batch as one JSON body and waits for a 2xx.
func (w *webhook) Deliver(ctx context.Context, batch []Delivery) error {
	body := w.body(batch)
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	for k, v := range w.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderHook, w.hookID)
	req.Header.Set(HeaderSignature, Sign(w.secret, body))
	req.Header.Set(HeaderDelivery, DeliveryID(w.hookID, batch))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook POST: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return &StatusError{Code: resp.StatusCode, Body: string(b)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBody))
	return nil
}

// body builds {"hook":"<id>","events":[<event>,...]}.
func (w *webhook) body(batch []Delivery) []byte {
	n := len(w.bodyHead) + 2
	for _, d := range batch {
		n += len(d.JSON) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, w.bodyHead...)
	for i, d := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d.JSON...)
	}
	return append(b, "]}"...)
}

// Close does nothing: the HTTP client is the Manager's.
func (w *webhook) Close() error { return nil }

// Sign returns the X-Geomatch-Signature value of a webhook body:
// "sha256=" and the hex of HMAC-SHA256(secret, body).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature (an X-Geomatch-Signature value) signs
// body with secret, in constant time. Receivers written in Go can call it.
func Verify(secret, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

// DeliveryID returns the X-Geomatch-Delivery value of a batch: the hex of
// the first 128 bits of SHA-256 over the hook id and the batch's event
// ids (each length-prefixed). Every retry of a batch carries the same id,
// so a receiver can drop a batch it has already processed.
func DeliveryID(hookID string, batch []Delivery) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(hookID)))])
	h.Write([]byte(hookID))
	for _, d := range batch {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(d.ID)))])
		h.Write([]byte(d.ID))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
