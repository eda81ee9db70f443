package api_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

func secretOf(n int) string {
	return api.SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n)))
}

func TestValidateSecret(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"24 bytes", secretOf(24), true},
		{"32 bytes", secretOf(32), true},
		{"64 bytes", secretOf(64), true},
		{"23 bytes", secretOf(23), false},
		{"65 bytes", secretOf(65), false},
		{"no prefix", strings.TrimPrefix(secretOf(32), api.SecretPrefix), false},
		{"empty", "", false},
		{"prefix only", api.SecretPrefix, false},
		{"upper-case prefix", "WHSEC_" + strings.TrimPrefix(secretOf(32), api.SecretPrefix), false},
		{"trailing newline", secretOf(32) + "\n", false},
		{"leading space", " " + secretOf(32), false},
		{"url-safe alphabet", api.SecretPrefix + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16))), false},
		{"unpadded", api.SecretPrefix + base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("k", 25))), false},
		{"non-canonical trailing bits", api.SecretPrefix + strings.Repeat("a", 34) + "b=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := api.ValidateSecret(tt.secret)
			if tt.ok {
				checkErr(t, err, "")
				return
			}
			checkErr(t, err, api.CodeInvalidSecret)
			if tt.secret != "" && len(tt.secret) > 8 && strings.Contains(err.Error(), tt.secret[6:]) {
				t.Errorf("the message quotes the secret: %q", err.Error())
			}
		})
	}
}

func TestParseCreateEndpointSecret(t *testing.T) {
	sec := secretOf(32)
	in, err := api.ParseCreateEndpoint([]byte(`{"url":"https://a.example.com","name":"n","secret":"`+sec+`"}`), strict)
	checkErr(t, err, "")
	if in.Secret == nil || *in.Secret != sec {
		t.Fatalf("secret = %v, want %q", in.Secret, sec)
	}
	in, err = api.ParseCreateEndpoint([]byte(`{"url":"https://a.example.com","name":"n","secret":null}`), strict)
	checkErr(t, err, "")
	if in.Secret != nil {
		t.Fatalf("secret null = %q, want generated (nil)", *in.Secret)
	}
	for _, body := range []string{
		`{"url":"https://a.example.com","name":"n","secret":1}`,
		`{"url":"https://a.example.com","name":"n","secret":"` + secretOf(8) + `"}`,
	} {
		_, err := api.ParseCreateEndpoint([]byte(body), strict)
		checkErr(t, err, api.CodeInvalidSecret)
	}
}

func TestParseRotateSecret(t *testing.T) {
	sec := secretOf(40)
	tests := []struct {
		name   string
		body   string
		want   string
		expire time.Duration
		secret string
	}{
		{name: "empty body", body: ``, expire: 24 * time.Hour},
		{name: "empty object", body: `{}`, expire: 24 * time.Hour},
		{name: "null expiry", body: `{"expire_previous_in":null}`, expire: 24 * time.Hour},
		{name: "1h", body: `{"expire_previous_in":"1h"}`, expire: time.Hour},
		{name: "0", body: `{"expire_previous_in":"0"}`, expire: 0},
		{name: "0s", body: `{"expire_previous_in":"0s"}`, expire: 0},
		{name: "168h", body: `{"expire_previous_in":"168h"}`, expire: 168 * time.Hour},
		{name: "whole milliseconds", body: `{"expire_previous_in":"1.5ms"}`, expire: time.Millisecond},
		{name: "1ns is at once", body: `{"expire_previous_in":"1ns"}`, expire: 0},
		{name: "168h and a fraction", body: `{"expire_previous_in":"168h0.5ms"}`, expire: 168 * time.Hour},
		{name: "2s and secret", body: `{"expire_previous_in":"2s","secret":"` + sec + `"}`, expire: 2 * time.Second, secret: sec},
		{name: "168h1s", body: `{"expire_previous_in":"168h1s"}`, want: api.CodeInvalidExpirePreviousIn},
		{name: "negative", body: `{"expire_previous_in":"-1s"}`, want: api.CodeInvalidExpirePreviousIn},
		{name: "days are not Go", body: `{"expire_previous_in":"1d"}`, want: api.CodeInvalidExpirePreviousIn},
		{name: "number", body: `{"expire_previous_in":3600}`, want: api.CodeInvalidExpirePreviousIn},
		{name: "empty string", body: `{"expire_previous_in":""}`, want: api.CodeInvalidExpirePreviousIn},
		{name: "bad secret", body: `{"secret":"whsec_abc"}`, want: api.CodeInvalidSecret},
		{name: "unknown field", body: `{"expire":"1h"}`, want: "unknown_field"},
		{name: "malformed", body: `{"expire_previous_in":`, want: "400"},
		{name: "not an object", body: `"24h"`, want: "400"},
		{name: "invalid utf-8", body: "{\"secret\":\"\xff\"}", want: api.CodeInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := api.ParseRotateSecret([]byte(tt.body))
			checkErr(t, err, tt.want)
			if tt.want != "" {
				return
			}
			if in.ExpirePreviousIn != tt.expire {
				t.Errorf("expire = %s, want %s", in.ExpirePreviousIn, tt.expire)
			}
			got := ""
			if in.Secret != nil {
				got = *in.Secret
			}
			if got != tt.secret {
				t.Errorf("secret = %q, want %q", got, tt.secret)
			}
		})
	}
}
