"""The normalization table of matching: concepts, the words and tags that name them, and what
each one implies.

Tags are messy: people write "ML", "machine-learning" or "machine learning"; "k8s" or
"kubernetes"; "copywriting" where a project asked for "writing"; or no tag at all and a
description that says "we need someone to fix our React front end". Matching reads tags and
text through this table, so that all of those name the same concepts.

One line per concept: `concept: alias, alias, ... > broader, broader`.

- The concept's own name is an alias too, with its dashes read as spaces.
- An alias is a tag or a phrase of up to four words, compared after `terms.stem`, so plurals
  and endings need no entries of their own ("writers", "writing" and "write" are one).
- An alias that starts with `=` counts only as a whole tag, never in free text: "go", "r" or
  "rust" are languages in a skill list and ordinary words in a sentence.
- `> broader` names the concepts this one implies, a step up: pytorch implies machine learning
  and python. Matching credits a broader concept at a discount, so someone fluent in pytorch
  fits a machine-learning project, less surely than someone who named it.

The table is general on purpose: it knows fields and their common words, not any one project.
Keep it so: add what a recruiter would know, never an entry that only serves one test case.
"""

from __future__ import annotations

TABLE = """
# Software: languages
programming: coding, software development, software engineering, software developer, programmer, software engineer > software
software: software project, app
python: python3, =py, django, flask, fastapi, pandas, numpy > programming
javascript: js, ecmascript, =es6, node.js, nodejs, =node > programming, web-development
typescript: =ts, =tsx > javascript
rust: rustlang, =rust, cargo crate > programming, systems-programming
golang: =go, go language, go programming > programming
java: jvm, spring boot > programming
kotlin: =kt > programming, android
c++: cpp, =c++, c plus plus > programming, systems-programming
c-language: =c, c language, ansi c > programming, systems-programming
c#: csharp, =c#, dotnet, =.net, =asp.net > programming
ruby: ruby on rails > programming, web-development
php: laravel, wordpress development, symfony > programming, web-development
swift: swiftui, =swift > programming, ios
r-language: =r, r language, rstats, tidyverse, ggplot2 > statistics, data-science
haskell: ghc > programming, functional-programming
elixir: phoenix framework, erlang > programming, functional-programming
functional-programming: fp, ocaml, clojure, scala > programming
scripting: =scripting, bash, shell script, powershell, shell scripting > programming
sql: postgresql, postgres, mysql, sqlite, database query > databases
systems-programming: low level, operating system, kernel, compiler > programming

# Software: the web and apps
web-development: web dev, webdev, website, web app, web application, full stack, fullstack > programming
frontend: front end, front-end, client side, html, css, sass, tailwind > web-development
backend: back end, back-end, server side, rest api, api development, graphql, microservices > web-development, programming
react: reactjs, react.js, next.js, nextjs, jsx > frontend, javascript
vue: vuejs, vue.js, nuxt > frontend, javascript
angular: angularjs > frontend, typescript
svelte: sveltekit > frontend, javascript
mobile-development: mobile app, mobile, smartphone app, react native, flutter, dart > programming
ios: iphone, ipad, xcode, objective-c > mobile-development
android: android app, jetpack compose > mobile-development
game-development: gamedev, game dev, video game, game design, indie game, godot > programming
unity: unity3d, unity engine > game-development, c#
unreal: unreal engine, ue5 > game-development, c++
browser-extension: chrome extension, firefox addon, web extension > frontend
accessibility: a11y, wcag, screen reader, aria, inclusive design > frontend, ux
performance: optimization, profiling, latency, benchmark, speed up > programming

# Software: data, ML, infrastructure
databases: database, db, data modeling, mongodb, redis, nosql, leveldb, database indexing > backend
data-science: data scientist, data analysis, analytics, data analyst, jupyter, exploratory analysis > statistics
data-engineering: etl, data pipeline, airflow, spark, kafka, data warehouse, dbt > databases, programming
data-visualization: dataviz, data viz, visualization, charts, dashboard, d3, d3.js, tableau, plotting, infographic > data-science
statistics: statistical, regression, hypothesis test, bayesian, econometrics > mathematics
mathematics: math, maths, algebra, calculus, mathematical proof, geometry, applied math
machine-learning: ml, machine learning, statistical learning, scikit-learn, sklearn, model training, xgboost > artificial-intelligence, data-science
deep-learning: =dl, neural network, neural net, deep learning, transformer model > machine-learning
pytorch: torch > deep-learning, python
tensorflow: keras, =tf > deep-learning, python
artificial-intelligence: ai, a.i., artificial intelligence, intelligent agent, ai agent
nlp: natural language processing, text mining, language model, llm, large language model, chatbot, text classification, sentiment analysis > machine-learning
computer-vision: cv, image recognition, object detection, image segmentation, opencv, image classification > machine-learning
mlops: ml ops, model deployment, model serving > machine-learning, devops
devops: dev ops, sre, site reliability, infrastructure, ci/cd, cicd, continuous integration, deployment, github actions, ansible, monitoring, observability > software
kubernetes: k8s, =k8s, kube, helm, container orchestration > devops, containers
containers: docker, container, containerization, podman, dockerfile > devops
cloud: aws, amazon web services, gcp, google cloud, azure, cloud computing, serverless, lambda > devops
terraform: infrastructure as code, iac, pulumi, opentofu > devops, cloud
linux: unix, debian, ubuntu, sysadmin, system administration, linux server > devops
networking: tcp/ip, network routing, dns, network engineering, tcp, udp, protocol design > systems-programming
peer-to-peer: p2p, =p2p, peer to peer, libp2p, distributed network, gossip protocol, bittorrent, ipfs, decentralized network > networking, distributed-systems
distributed-systems: distributed system, consensus, replication, fault tolerance, raft, paxos > systems-programming
security: cybersecurity, infosec, information security, appsec, penetration testing, pentest, vulnerability, security audit, threat model > software
cryptography: encryption, cryptographic, zero knowledge, zk, zkp, digital signature, ed25519, elliptic curve > security, mathematics
blockchain: web3, cryptocurrency, crypto, distributed ledger, ethereum, evm, defi, dapp, onchain, on chain, nft > distributed-systems
smart-contracts: smart contract, solidity, vyper, foundry, hardhat, contract audit > blockchain, programming
testing: qa, quality assurance, test automation, unit test, unit testing, integration test, end to end test, e2e, pytest, selenium, cypress, playwright, fuzzing, tester > software
open-source: oss, foss, free software, open source, open-source project, maintainer
embedded: embedded systems, firmware, microcontroller, arduino, raspberry pi, esp32, stm32, rtos, iot, internet of things > electronics, c-language
electronics: electronic, pcb, circuit, circuit design, kicad, soldering, hardware design, fpga > hardware
hardware: hardware hacking, maker
robotics: robot, ros, robotic, drone, autonomous vehicle > embedded, hardware
3d-modeling: 3d, 3d modeling, 3d modelling, blender, 3d printing, cad, fusion 360, solidworks, freecad, 3d art > design
gis: geographic information system, maps, map making, openstreetmap, osm, qgis, geospatial, cartography, spatial data > data-science

# Writing and language
writing: writer, write, author, written content, text writing
copywriting: copywriter, copy writing, ad copy, sales copy, marketing copy, landing page copy > writing, marketing
technical-writing: tech writing, technical writer, documentation, docs, api docs, user guide, user manual, readme, how-to guide, tutorial writing > writing
content-writing: content writer, blog, blogging, blog post, article, articles, newsletter, content creation > writing
creative-writing: fiction, short story, novel, poetry, poem, storytelling, screenwriting, script writing, worldbuilding > writing
journalism: journalist, news, investigative > writing
editing: editor, copyediting, copy editing, proofreading, proofread, proofreader, line edit > writing
grant-writing: grant, grants, grant proposal, funding application, proposal writing > writing, fundraising
translation: translator, translate, localization, l10n, i18n, internationalization, subtitles, subtitling, language interpreting > languages
languages: language, linguistics, bilingual, multilingual, native speaker
spanish: espanol, castellano, =es > languages
french: francais, =fr > languages
german: deutsch, =de > languages
portuguese: portugues, brazilian portuguese, =pt > languages
chinese: mandarin, cantonese, =zh > languages
japanese: nihongo, =ja > languages
arabic: =ar > languages
swahili: kiswahili, =sw > languages
hindi: =hi > languages
sign-language: asl, bsl, sign language > languages, accessibility

# Design and media
design: designer, visual design, creative direction
ui-design: ui, user interface, interface design, figma, sketch app, wireframe, mockup, prototype design > design, ux
ux: user experience, ux design, ux research, usability, user research, user testing, interaction design, service design > design
graphic-design: graphic designer, graphics, poster design, flyer design, print design, page layout, typography, canva, photoshop, illustrator, indesign > design
branding: brand, brand identity, logo, logo design, visual identity, style guide > graphic-design, marketing
illustration: illustrator, drawing, digital art, comic, comics, sketching, concept art, character design > design, visual-art
visual-art: =art, artist, painting, fine art, mural, ceramics, sculpture
animation: animator, motion graphics, after effects, 2d animation, 3d animation, explainer video > video, design
video: videography, video editing, video editor, filmmaking, film, premiere, davinci resolve, youtube video, vlog, documentary > media
photography: photographer, photo, photos, photo editing, lightroom, product photography > media
audio: audio engineering, sound design, mixing, audio mastering, sound engineering, audio editing, voice over, voiceover, narration > media
podcast: podcasting, podcaster, podcast production, podcast editing > audio
music: musician, composer, composition, music production, songwriting, soundtrack > audio, visual-art
media: multimedia, media production, content production

# Marketing, community, business
marketing: marketer, digital marketing, growth hacking, go to market, campaign, advertising, ads, promotion, outreach
seo: search engine optimization, search engine optimisation, keyword research, serp > marketing, web-development
social-media: social media, twitter, instagram, tiktok, linkedin, mastodon, social media management > marketing
email-marketing: email campaign, mailchimp, drip campaign > marketing
community-management: community manager, moderation, moderator, discord, forum, community building, ambassador, volunteer coordination > communication
communication: communications, public relations, =pr, press release, public speaking, comms, storytelling for
sales: salesperson, business development, bizdev, lead generation, cold outreach, crm, account management > business
customer-support: customer service, help desk, helpdesk, support ticket, customer success > business
business: entrepreneurship, startup, business plan, consulting, small business
product-management: product manager, product owner, roadmap, product strategy, user stories, backlog > business, project-management
project-management: project manager, scrum, agile, kanban, program management, organizer > business
event-planning: event management, event organizing, conference, meetup, hackathon, workshop organizing, festival > project-management
fundraising: fund raising, donor, donation, crowdfunding, sponsorship > business
finance: financial, financial modeling, investment, budgeting, financial analysis, valuation, fintech
accounting: accountant, bookkeeping, bookkeeper, ledger, invoicing, payroll, quickbooks, xero, audit trail > finance
tax: taxes, tax return, tax filing, tax law, vat > finance, legal
economics: economist, economic, microeconomics, macroeconomics, market research > social-science
human-resources: =hr, recruiting, recruitment, hiring, talent acquisition, employee onboarding > business
spreadsheets: excel, google sheets, spreadsheet, pivot table > data-science

# Knowledge, science, society
research: researcher, literature review, academic, scientific research, study design, survey design, peer review, systematic review
science: scientist, scientific, laboratory, lab work, experiment > research
biology: biologist, molecular biology, microbiology, genetics, cell biology, lab biology > science
bioinformatics: genomics, dna sequencing, computational biology, protein structure, dna analysis > biology, data-science, programming
chemistry: chemist, chemical, organic chemistry, biochemistry > science
physics: physicist, astrophysics, quantum physics > science, mathematics
climate: climate change, climate science, carbon, emissions, decarbonization, net zero, carbon footprint > environment
environment: environmental, sustainability, conservation, ecology, biodiversity, wildlife, rewilding, ecosystem, nature
energy: renewable energy, renewables, solar, solar power, wind power, battery storage, energy efficiency, electric grid > environment, engineering
agriculture: farming, farm, farmer, agronomy, crop yield, crop rotation, soil, permaculture, agroecology, irrigation, regenerative agriculture > environment
gardening: garden, gardener, horticulture, urban farming, community garden, composting > agriculture
food: cooking, chef, cook, recipe, recipes, baking, nutrition, cuisine, food safety
health: healthcare, health care, medical, medicine, clinical, patient care, public health, epidemiology, global health
nursing: nurse, caregiving, caregiver, elder care > health
mental-health: mental health, psychology, psychologist, therapy, counseling, wellbeing, well-being > health
fitness: sport, sports, training plan, coaching athletes, yoga > health
education: teaching, teacher, tutor, tutoring, curriculum, lesson, lesson plan, online course, course design, course material, instructional design, e-learning, elearning, classroom, pedagogy, school, edtech, mooc
legal: law, lawyer, attorney, legal advice, contract law, contract review, terms of service, intellectual property, ip law, compliance, regulation, regulatory
privacy: gdpr, data protection, privacy policy, ccpa, personal data > legal, security
social-science: sociology, anthropology, political science, social research, ethnography
history: =history, historian, historical, archive, archives, archival, heritage, genealogy > research
humanitarian: ngo, nonprofit, non-profit, charity, humanitarian aid, refugee, refugees, disaster relief, social impact, civic tech, civic
open-data: open data, public data, data portal > data-science, civic-tech
civic-tech: civic technology, govtech, government, public sector, participatory, democracy, voting
governance: dao, dao governance, voting system, bylaws, tokenomics > civic-tech
transport: transportation, mobility, transit, public transport, bike lanes, bicycle, logistics, shipping, supply chain
urban-planning: urbanism, city planning, housing, zoning law > civic-tech
architecture: architect, building design, floor plan, revit, autocad > construction, design
construction: construction work, carpentry, carpenter, woodworking, renovation, plumbing, electrician, masonry, home repair > engineering
engineering: mechanical engineering, civil engineering, structural engineering, manufacturing, hardware prototyping
crafts: craft, handmade, sewing, knitting, textile, embroidery, jewelry, leatherwork, pottery > visual-art
fashion: clothing, apparel, garment, fashion design, pattern making > design, crafts
"""
