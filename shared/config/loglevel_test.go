package config

import (
	"log/slog"
	"strings"
	"testing"
)

func TestParseLogLevel(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    slog.Level
		wantErr bool
	}{
		{name: "unset is INFO", in: "", want: slog.LevelInfo},
		{name: "template dev", in: "DEBUG", want: slog.LevelDebug},
		{name: "template prod", in: "INFO", want: slog.LevelInfo},
		{name: "lower case", in: "debug", want: slog.LevelDebug},
		{name: "mixed case and spaces", in: " Warn ", want: slog.LevelWarn},
		{name: "error", in: "ERROR", want: slog.LevelError},
		{name: "unknown", in: "verbose", want: slog.LevelInfo, wantErr: true},
		{name: "slog offset form is not ours", in: "INFO+2", want: slog.LevelInfo, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLogLevel(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseLogLevel(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLoadFunctionLogLevel(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    slog.Level
		wantErr bool
	}{
		{name: "default", env: map[string]string{}, want: slog.LevelInfo},
		{name: "DEBUG as template.yaml sets it", env: map[string]string{EnvLogLevel: "DEBUG"}, want: slog.LevelDebug},
		{name: "debug as the old code expected", env: map[string]string{EnvLogLevel: "debug"}, want: slog.LevelDebug},
		{name: "typo fails fast", env: map[string]string{EnvLogLevel: "DEBGU"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := LoadFunction(env(tt.env))
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), EnvLogLevel) {
					t.Errorf("LoadFunction(%v) error = %v, want one naming %s", tt.env, err, EnvLogLevel)
				}
				return
			}
			if err != nil || f.LogLevel != tt.want {
				t.Errorf("LoadFunction(%v) LogLevel = %v, %v; want %v", tt.env, f.LogLevel, err, tt.want)
			}
		})
	}
}
