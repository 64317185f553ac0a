// The real-vs-fake study page: plays one participant's seeded sequence from trials.js (window.STUDY),
// records each answer with its timings, and downloads the answers as JSON at the end. No network.
(function () {
  "use strict";
  const S = window.STUDY;
  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  let session = null;

  function show(section) {
    for (const id of ["start", "run", "done"]) $(id).hidden = id !== section;
  }

  function load(img, src) {
    img.src = "images/" + src;
    return img.decode();  // shown only once decoded, so the display time is the full show_ms
  }

  function waitForAnswer() {
    return new Promise((resolve) => {
      const t0 = performance.now();
      function finish(side) {
        document.removeEventListener("keydown", onKey);
        $("left").onclick = $("right").onclick = null;
        resolve({ side: side, ms: performance.now() - t0 });
      }
      function onKey(e) {
        if (e.key === "ArrowLeft" || e.key === "f") finish("left");
        if (e.key === "ArrowRight" || e.key === "j") finish("right");
      }
      document.addEventListener("keydown", onKey);
      $("left").onclick = () => finish("left");
      $("right").onclick = () => finish("right");
    });
  }

  async function runTrial(trial, n) {
    const left = trial.real_side === "left" ? trial.real : trial.fake;
    const right = trial.real_side === "left" ? trial.fake : trial.real;
    $("progress").textContent = trial.practice ? "Practice " + (n + 1) + " of " + S.practice
      : "Trial " + (n + 1 - S.practice) + " of " + S.trials;
    $("pair").classList.add("hidden");
    await Promise.all([load($("img-left"), left), load($("img-right"), right)]);
    $("pair").classList.remove("hidden");
    const shownAt = performance.now();
    await sleep(S.show_ms);
    $("pair").classList.add("hidden");
    const shownMs = performance.now() - shownAt;
    $("question").hidden = false;
    const answer = await waitForAnswer();
    $("question").hidden = true;
    const correct = answer.side === trial.real_side;
    if (trial.practice) {
      $("feedback").textContent = correct ? "Correct." : "Wrong: the real image was on the " + trial.real_side + ".";
      $("feedback").className = correct ? "correct" : "wrong";
      $("feedback").hidden = false;
      await sleep(S.feedback_ms);
      $("feedback").hidden = true;
    }
    return Object.assign({}, trial, {
      answer: answer.side, correct: correct, fooled: !correct,
      shown_ms: Math.round(shownMs), response_ms: Math.round(answer.ms),
    });
  }

  function answersFile() {
    const name = "answers-" + S.study + "-p" + session.participant + ".json";
    const blob = new Blob([JSON.stringify(session.answers, null, 1)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    return name;
  }

  async function begin() {
    const p = String(parseInt($("participant").value, 10));
    if (!(p in S.participants)) {
      $("start-error").textContent = "Participant numbers run from 1 to " + Object.keys(S.participants).length + ".";
      return;
    }
    const seq = S.participants[p];
    session = { participant: Number(p), trials: seq.trials };
    session.answers = {
      format: "cyclegan-study-answers/1", study: S.study, participant: Number(p), method: seq.method,
      show_ms: S.show_ms, practice: S.practice, user_agent: navigator.userAgent,
      started: new Date().toISOString(), finished: null, trials: [],
    };
    show("run");
    for (let i = 0; i < seq.trials.length; i++) {
      session.answers.trials.push(await runTrial(seq.trials[i], i));
    }
    session.answers.finished = new Date().toISOString();
    show("done");
    $("answers-name").textContent = answersFile();
    $("download").onclick = answersFile;
  }

  document.title = S.title;
  $("title").textContent = S.title;
  $("n-practice").textContent = S.practice;
  $("n-trials").textContent = S.trials;
  for (const id of ["img-left", "img-right"]) {
    $(id).width = S.display;
    $(id).height = S.display;
  }
  const fromUrl = new URLSearchParams(location.search).get("participant");
  if (fromUrl) $("participant").value = fromUrl;
  $("begin").onclick = begin;
  show("start");
})();
