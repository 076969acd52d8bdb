// Command echo is a test function: it answers its payload, sleeps when asked, fails when asked.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type request struct {
	Echo    string `json:"echo"`
	SleepMS int    `json:"sleepMs"`
	Fail    bool   `json:"fail"`
}

func main() {
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (map[string]string, error) {
		var r request
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		if r.Fail {
			return nil, errors.New("asked to fail")
		}
		println("working")
		time.Sleep(time.Duration(r.SleepMS) * time.Millisecond)
		return map[string]string{"echo": r.Echo}, nil
	})
}
