// Errors in plain words: what the API and the stream say, turned into sentences for people.
// Pure functions with no DOM or I/O (tests/web runs them under Node).

const FIELDS = {
  prompt: "The prompt",
  system: "The system prompt",
  maxTokens: "Max tokens",
  temperature: "Temperature",
  groupName: "The group name",
  group: "The group name",
  connectionId: "This tab's connection",
  invite: "The invite",
  messages: "The conversation",
  body: "The request",
};

function fieldName(field) {
  if (!field) return "The request";
  const turn = /^messages\[(\d+)\]/.exec(field);
  if (turn) return `Turn ${Number(turn[1]) + 1} of the conversation`;
  return FIELDS[field] || `The field "${field}"`;
}

function seconds(retryAfter) {
  const s = Math.max(1, Math.round(Number(retryAfter) || 0));
  return s === 1 ? "1 second" : `${s} seconds`;
}

// One API failure ({status, code, field, message, retryAfter}) as a sentence.
export function plainError({ status = 0, code = "", field = null, message = "", retryAfter = null } = {}) {
  switch (code) {
    case "rate_limited": {
      const why = message ? ` (${message})` : "";
      const wait = retryAfter ? ` Try again in ${seconds(retryAfter)}.` : " Wait a moment and try again.";
      return `Rate limited: you are sending too many requests${why}.${wait}`;
    }
    case "invalid_request":
      return `Invalid ${field === "prompt" ? "prompt" : "request"}: ${fieldName(field)} ${message || "is not valid"}.`;
    case "invalid_json":
    case "unsupported_media_type":
      return "The page sent a request the service could not read. Reload the page and try again.";
    case "payload_too_large":
      return "That is too long to send. Shorten the prompt or the conversation.";
    case "not_a_member":
      return "You are not a member of that group. Ask its owner for an invite link.";
    case "connection_not_claimed":
    case "claim_failed":
      return "This tab is not registered for tab-only answers yet. Wait until it shows connected, then try again.";
    case "not_found":
      return "That no longer exists, or it is not yours to see.";
    case "not_owner":
      return "Only the group's owner can do that.";
    case "not_allowed":
      return `Not yours to do: ${message || "only the job's owner can"}.`;
    case "invite_required":
      return "That group already exists and is invite-only. Ask its owner for an invite link.";
    case "invalid_invite":
      return "That invite link is not valid: it has expired, was already used, or the group was deleted.";
    case "owner_cannot_leave":
      return "You own this group: delete it instead of leaving it.";
    case "job_finished":
      return "That answer has already ended.";
    case "job_running":
      return "That answer is still running: cancel it or wait for it to end before erasing it.";
    case "unauthenticated":
      return "You are not signed in. Sign in and try again.";
    case "cross_origin_identity":
      return "The service refused this page's origin. Open the page from the service's own address.";
    case "forbidden":
      return `Not allowed: ${message || "you cannot do that"}.`;
    default:
      break;
  }
  if (status === 0 || status >= 500 || code === "unavailable" || code === "not_configured") {
    return "Service unavailable: the service cannot be reached right now. Try again in a moment.";
  }
  if (status === 429) return "Rate limited: too many requests. Wait a moment and try again.";
  if (status === 401) return "You are not signed in. Sign in and try again.";
  if (status === 404) return "That no longer exists, or it is not yours to see.";
  return message ? `The request failed: ${message}.` : `The request failed (HTTP ${status}).`;
}

// Why a job ended without an answer ({code, message} from a status message or the job).
export function plainJobError(error) {
  const code = (error && error.code) || "unknown";
  switch (code) {
    case "llm_rate_limited":
      return "The model is rate limited and the retries ran out. Try again in a minute.";
    case "llm_unavailable":
      return "The model service was unavailable and the retries ran out. Try again shortly.";
    case "content_filtered":
      return "The answer was stopped by the content filter.";
    case "llm_rejected":
      return "The model refused this request (it may be too long for the model).";
    case "timeout":
      return "The answer took too long and was stopped.";
    case "signalr_unavailable":
    case "signalr_rejected":
      return "Live delivery failed; the text so far is kept.";
    case "canceled":
      return "Canceled.";
    default:
      return "Something went wrong while answering. Try again.";
  }
}

// A retry in progress, from a running status message that carries the last attempt's error.
export function plainRetry(attempt, error) {
  const why = error ? ` after: ${plainJobError(typeof error === "string" ? { code: error } : error)}` : "";
  return `Retrying (attempt ${attempt})${why}`;
}
