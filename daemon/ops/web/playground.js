// The roomd playground: join a room with an agent, talk or type, and watch what happens.
// Plain JavaScript over LiveKit's browser SDK (window.LivekitClient); no build step.
// What the page saw is also kept in window.playground, which the browser tests read.
"use strict";

(() => {
  const LK = window.LivekitClient;
  const TRANSCRIPTION = "lk.transcription";
  const CHAT = "lk.chat";
  const TURN_METRICS = "roomd.turn_metrics";
  const AGENT_STATE = "lk.agent.state";

  const $ = (id) => document.getElementById(id);
  const view = (window.playground = {
    connection: "idle",
    agentState: null,
    statesSeen: [], // every agent state shown, in order
    transcript: [], // {id, who: "user" | "agent", text, final}
    turns: {}, // turn number -> the agent's TurnMetrics
    audio: { bytesReceived: 0, energy: 0, level: 0, maxLevel: 0 },
  });

  let room = null;
  let audioContext = null;
  let timers = [];
  const meters = []; // {analyser, element, onLevel}
  const received = new Map(); // track sid -> {bytes, energy}: inbound audio of this call

  // -- small helpers ----------------------------------------------------------------------
  function setConnection(state, label) {
    view.connection = state;
    const pill = $("connection");
    pill.dataset.state = state;
    pill.textContent = label || state;
    const live = state === "connected";
    $("talk").disabled = state !== "idle" || !$("agent").value || !LK;
    $("agent").disabled = state !== "idle";
    $("hangup").disabled = state === "idle";
    $("text").disabled = !live;
    $("send").disabled = !live;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function setAgentState(state) {
    view.agentState = state;
    if (state) view.statesSeen.push(state);
    const pill = $("agent-state");
    pill.dataset.state = state || "none";
    pill.textContent = state || "—";
  }

  function upsertLine(id, who, text, final) {
    let line = view.transcript.find((l) => l.id === id);
    if (!line) {
      line = { id, who, text, final };
      view.transcript.push(line);
    }
    Object.assign(line, { text, final });
    let item = document.querySelector(`#transcript li[data-id="${CSS.escape(id)}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.id = id;
      item.className = who;
      item.innerHTML = '<span class="who"></span><span class="text"></span>';
      item.querySelector(".who").textContent = who === "user" ? "you" : "agent";
      $("transcript").appendChild(item);
    }
    item.querySelector(".text").textContent = text;
    item.classList.toggle("interim", !final);
    $("transcript").scrollTop = $("transcript").scrollHeight;
  }

  function note(text) {
    const item = document.createElement("li");
    item.className = "system";
    item.textContent = text;
    $("transcript").appendChild(item);
  }

  const seconds = (v) => (v === null || v === undefined ? "—" : v.toFixed(2));

  function renderTurns() {
    const rows = Object.values(view.turns).sort((a, b) => a.turn - b.turn);
    const longest = Math.max(1, ...rows.map((t) => t.first_audio || 0));
    $("turns").innerHTML = "";
    for (const t of rows) {
      const row = document.createElement("tr");
      const cells = [t.turn, t.input, seconds(t.transcription_delay), seconds(t.end_of_turn_delay),
        t.llm_ttft.length ? t.llm_ttft.map(seconds).join(" + ") : "—", seconds(t.tts_ttfb),
        seconds(t.first_audio)];
      for (const value of cells) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.appendChild(cell);
      }
      const bar = document.createElement("td");
      bar.className = "bar";
      bar.innerHTML = "<span></span>";
      bar.firstChild.style.width = `${Math.round(((t.first_audio || 0) / longest) * 100)}%`;
      row.appendChild(bar);
      $("turns").appendChild(row);
    }
  }

  // -- audio levels -----------------------------------------------------------------------
  function meter(mediaStreamTrack, element, onLevel) {
    audioContext = audioContext || new AudioContext();
    const source = audioContext.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
    const analyser = audioContext.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    meters.push({ analyser, element, onLevel, buffer: new Float32Array(analyser.fftSize) });
  }

  function sampleLevels() {
    for (const m of meters) {
      m.analyser.getFloatTimeDomainData(m.buffer);
      let sum = 0;
      for (const x of m.buffer) sum += x * x;
      const rms = Math.sqrt(sum / m.buffer.length);
      m.element.value = Math.min(1, rms * 5);
      if (m.onLevel) m.onLevel(rms);
    }
  }

  async function sampleStats() {
    if (!room) return;
    for (const participant of room.remoteParticipants.values()) {
      for (const publication of participant.audioTrackPublications.values()) {
        const track = publication.track;
        if (!track) continue;
        const report = await track.getRTCStatsReport();
        report?.forEach((stat) => {
          if (stat.type === "inbound-rtp" && stat.kind === "audio") {
            received.set(publication.trackSid, { bytes: stat.bytesReceived || 0, energy: stat.totalAudioEnergy || 0 });
          }
        });
      }
    }
    // Totals over every track of the call, including those already gone.
    const totals = [...received.values()];
    const bytes = totals.reduce((sum, t) => sum + t.bytes, 0);
    view.audio.bytesReceived = bytes;
    view.audio.energy = totals.reduce((sum, t) => sum + t.energy, 0);
    $("audio-received").textContent = `audio received: ${(bytes / 1000).toFixed(0)} kB`;
  }

  // -- the room ---------------------------------------------------------------------------
  function isAgent(participant) {
    return participant.kind === LK.ParticipantKind.AGENT || AGENT_STATE in (participant.attributes || {});
  }

  function wire(r) {
    r.registerTextStreamHandler(TRANSCRIPTION, async (reader, from) => {
      const attributes = reader.info.attributes || {};
      const id = attributes["lk.segment_id"] || reader.info.id;
      // The agent publishes the user's transcript too: whose words these are is told by
      // the transcribed track (ours is the microphone), not by the sender.
      const track = attributes["lk.transcribed_track_id"];
      const mine = track ? r.localParticipant.trackPublications.has(track) : false;
      const who = mine || from.identity === r.localParticipant.identity ? "user" : "agent";
      let text = "";
      for await (const chunk of reader) {
        text += chunk;
        if (who === "agent") upsertLine(id, who, text, false);
      }
      // The user's versions are whole streams, marked final or not; the agent's stream is
      // its text as spoken, final once it closes.
      upsertLine(id, who, text, who === "agent" || attributes["lk.transcription_final"] === "true");
    });
    r.on(LK.RoomEvent.ParticipantConnected, (p) => {
      if (isAgent(p)) note(`${p.identity} joined`);
      if (p.attributes?.[AGENT_STATE]) setAgentState(p.attributes[AGENT_STATE]);
    });
    r.registerTextStreamHandler(CHAT, async (reader, from) => {
      if (from.identity === r.localParticipant.identity) return;
      upsertLine(reader.info.id, "agent", await reader.readAll(), true);
    });
    r.on(LK.RoomEvent.ParticipantDisconnected, (p) => {
      if (!isAgent(p)) return;
      note(`${p.identity} left`);
      setAgentState(null);
    });
    r.on(LK.RoomEvent.ParticipantAttributesChanged, (changed, p) => {
      if (AGENT_STATE in changed && p !== r.localParticipant) setAgentState(changed[AGENT_STATE]);
    });
    r.on(LK.RoomEvent.DataReceived, (payload, _participant, _kind, topic) => {
      if (topic !== TURN_METRICS) return;
      const turn = JSON.parse(new TextDecoder().decode(payload));
      view.turns[turn.turn] = turn;
      renderTurns();
    });
    r.on(LK.RoomEvent.TrackSubscribed, (track) => {
      if (track.kind !== LK.Track.Kind.Audio) return;
      const element = track.attach();
      element.dataset.agentAudio = "";
      document.body.appendChild(element);
      meter(track.mediaStreamTrack, $("agent-level"), (rms) => {
        view.audio.level = rms;
        view.audio.maxLevel = Math.max(view.audio.maxLevel, rms);
      });
    });
    r.on(LK.RoomEvent.Disconnected, () => {
      if (room === r) cleanUp("the call ended");
    });
  }

  async function talk() {
    showError("");
    const agentName = $("agent").value;
    setConnection("connecting", "connecting…");
    try {
      const response = await fetch("api/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ agent_name: agentName }),
      });
      const grant = await response.json();
      if (!response.ok) throw new Error(grant.error || `session request failed (${response.status})`);
      room = new LK.Room();
      wire(room);
      await room.connect(grant.url, grant.token);
      for (const p of room.remoteParticipants.values()) { // the agent may be there first
        if (p.attributes?.[AGENT_STATE]) setAgentState(p.attributes[AGENT_STATE]);
      }
      await room.startAudio(); // inside the click: browsers allow playback from here on
      note(`joined ${grant.room}; waiting for ${agentName}`);
      await room.localParticipant.setMicrophoneEnabled(true);
      const mic = room.localParticipant.getTrackPublication(LK.Track.Source.Microphone);
      if (mic?.track) meter(mic.track.mediaStreamTrack, $("mic-level"));
      timers = [setInterval(sampleLevels, 50), setInterval(sampleStats, 250)];
      setConnection("connected", `connected to ${agentName}`);
    } catch (error) {
      showError(`Could not start the call: ${error.message || error}`);
      await hangUp();
    }
  }

  function cleanUp(why) {
    timers.forEach(clearInterval);
    timers = [];
    meters.length = 0;
    received.clear();
    document.querySelectorAll("audio[data-agent-audio]").forEach((el) => el.remove());
    room = null;
    setAgentState(null);
    if (why) note(why);
    setConnection("idle", "not connected");
  }

  async function hangUp() {
    const r = room;
    room = null;
    if (r) await r.disconnect();
    cleanUp(r ? "you hung up" : "");
  }

  async function send(event) {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text || !room) return;
    $("text").value = "";
    await room.localParticipant.sendText(text, { topic: CHAT });
    upsertLine(`typed-${Date.now()}`, "user", text, true);
  }

  async function loadAgents() {
    const response = await fetch("api/agents");
    const body = await response.json();
    const select = $("agent");
    select.innerHTML = "";
    for (const agent of body.agents) {
      const option = document.createElement("option");
      option.value = agent.agent_name;
      option.textContent = agent.agent_name === agent.plugin ? agent.plugin : `${agent.agent_name} (${agent.plugin})`;
      select.appendChild(option);
    }
    if (!body.agents.length) showError("No agent is being served yet: reload when the daemon is ready.");
    if (!LK || !body.livekit_client) {
      $("fetch-hint").textContent = body.fetch_hint;
      $("missing-sdk").hidden = false;
    }
    const preferred = new URLSearchParams(location.search).get("agent");
    if (preferred && body.agents.some((a) => a.agent_name === preferred)) select.value = preferred;
    setConnection("idle", "not connected");
  }

  $("talk").addEventListener("click", talk);
  $("hangup").addEventListener("click", hangUp);
  $("chat").addEventListener("submit", send);
  loadAgents().catch((error) => showError(`Could not list the agents: ${error.message || error}`));
})();
